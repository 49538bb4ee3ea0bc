/* The boot64 test guest's 64-bit part, loaded at 0x100000 and entered at +0x200 like a
 * Linux kernel. It checks its entry state (CS 0x10; DS, ES, SS 0x18; paging and long mode
 * on; interrupts off; RSI = boot_params with "HdrS"), its e820 map, its command line
 * (must contain "boot64-test"), its initrd (4096 bytes starting "INITRD-OK"), then finds
 * the first virtio-mmio device on the command line (virtio_mmio.device=4K@0x...:irq),
 * which must be virtio-rng, and reads 16 random bytes from it by polling (the notify goes
 * through an ioeventfd). Booted with ACPI (boot_params.acpi_rsdp_addr set), it checks the
 * RSDP's signature there instead and takes the first device window (0xd0000000). It writes
 * the boot marker, reports on the serial port and resets through the i8042, or with
 * "boot64-spin" on its command line spins on (for tests that pause and snapshot it). A failed check prints "boot64: FAIL" and writes its number to the
 * exit port 0x501. */
.code64
.globl _start
_start:
	.org 0x200
entry:
	mov %rsi, %r15			/* boot_params */
	cld

.macro fail_if cc, code
	j\cc 8f
	jmp 9f
8:	mov $\code, %bl
	jmp fail
9:
.endm

	mov %cs, %ax
	cmp $0x10, %ax
	fail_if ne, 1
	mov %ds, %ax
	cmp $0x18, %ax
	fail_if ne, 2
	mov %es, %ax
	cmp $0x18, %ax
	fail_if ne, 3
	mov %ss, %ax
	cmp $0x18, %ax
	fail_if ne, 4
	mov %cr0, %rax
	bt $31, %rax			/* PG */
	fail_if nc, 5
	mov $0xc0000080, %ecx		/* EFER */
	rdmsr
	bt $10, %eax			/* LMA */
	fail_if nc, 6
	pushfq
	pop %rax
	bt $9, %rax			/* IF */
	fail_if c, 7
	cmpl $0x53726448, 0x202(%r15)	/* "HdrS" in boot_params */
	fail_if ne, 8

	/* e820: at least 3 entries, one of them RAM at 1 MiB */
	movzbl 0x1e8(%r15), %ecx
	cmp $3, %ecx
	fail_if b, 9
	lea 0x2d0(%r15), %rdx
1:	cmpq $0x100000, (%rdx)
	jne 2f
	cmpl $1, 16(%rdx)
	je 3f
2:	add $20, %rdx
	dec %ecx
	jnz 1b
	mov $10, %bl
	jmp fail
3:
	/* the command line holds "boot64-test" */
	movl 0x228(%r15), %esi
	lea pattern(%rip), %r8
	mov $11, %r9
	call find
	test %rax, %rax
	fail_if z, 11

	/* the initrd: 4096 bytes starting "INITRD-OK" */
	movl 0x21c(%r15), %ecx
	cmp $4096, %ecx
	fail_if ne, 12
	movl 0x218(%r15), %esi
	lea initrd_magic(%rip), %rdi
	mov $9, %rcx
	repe cmpsb
	fail_if ne, 13

	/* with ACPI: the RSDP where the zero page says, and the first device window */
	mov 0x70(%r15), %rsi
	test %rsi, %rsi
	jz 3f
	mov $0x2052545020445352, %rax	/* "RSD PTR " */
	cmp (%rsi), %rax
	fail_if ne, 21
	mov $0xd0000000, %ebx		/* zero-extended */
	jmp 6f
3:
	/* the first virtio-mmio device on the command line */
	movl 0x228(%r15), %esi
	lea at0x(%rip), %r8
	mov $3, %r9
	call find
	test %rax, %rax
	fail_if z, 14
	lea 3(%rax), %rsi
	xor %rbx, %rbx
4:	movzbl (%rsi), %eax		/* parse hex up to ':' */
	cmp $':', %al
	je 6f
	sub $'0', %al
	cmp $9, %al
	jbe 5f
	sub $('a' - '0' - 10), %al
5:	shl $4, %rbx
	or %rax, %rbx
	inc %rsi
	jmp 4b
6:	mov %rbx, %r14			/* device base */
	cmpl $0x74726976, (%r14)
	fail_if ne, 15
	cmpl $2, 4(%r14)
	fail_if ne, 16
	cmpl $4, 8(%r14)		/* virtio-rng */
	fail_if ne, 17
	movl $0, 0x70(%r14)
	movl $1, 0x70(%r14)
	movl $3, 0x70(%r14)
	movl $0, 0x24(%r14)
	movl $0, 0x20(%r14)
	movl $1, 0x24(%r14)
	movl $1, 0x20(%r14)		/* VERSION_1 */
	movl $11, 0x70(%r14)
	testl $8, 0x70(%r14)		/* FEATURES_OK re-read */
	fail_if z, 18
	movl $0, 0x30(%r14)
	movl $4, 0x38(%r14)
	movl $0x400000, 0x80(%r14)
	movl $0, 0x84(%r14)
	movl $0x401000, 0x90(%r14)
	movl $0, 0x94(%r14)
	movl $0x402000, 0xa0(%r14)
	movl $0, 0xa4(%r14)
	movl $1, 0x44(%r14)
	movl $15, 0x70(%r14)		/* DRIVER_OK */
	movq $0x403000, 0x400000	/* desc 0: 16 writable bytes */
	movl $16, 0x400008
	movw $2, 0x40000c
	movw $0, 0x40000e
	movw $0, 0x401004
	movw $1, 0x401002		/* avail.idx = 1 */
	movl $0, 0x50(%r14)		/* QueueNotify (an ioeventfd) */
7:	cmpw $1, 0x402002		/* no limit: the test bounds the wait in wall-clock time */
	jne 7b
	cmpl $16, 0x402008		/* used.ring[0].len */
	fail_if ne, 20

	mov $0x505, %dx			/* boot marker */
	out %al, %dx
	lea ok(%rip), %rdi
	call puts
	movl 0x228(%r15), %esi
	lea spin(%rip), %r8
	mov $11, %r9
	call find
	test %rax, %rax
	jz 10f
17:	pause
	jmp 17b
10:	mov $0xfe, %al
	out %al, $0x64			/* i8042 reset */
11:	hlt
	jmp 11b

fail:
	lea failmsg(%rip), %rdi
	call puts
	mov %bl, %al
	mov $0x501, %dx
	out %al, %dx
12:	hlt
	jmp 12b

/* find: the address of the first match of r9 bytes at r8 in the NUL-terminated string at rsi, or 0 */
find:
	cmpb $0, (%rsi)
	je 14f
	push %rsi
	mov %r8, %rdi
	mov %r9, %rcx
	repe cmpsb
	pop %rsi
	je 13f
	inc %rsi
	jmp find
13:	mov %rsi, %rax
	ret
14:	xor %rax, %rax
	ret

putc:
	mov %al, %r8b
	mov $0x3fd, %dx
15:	in %dx, %al
	test $0x20, %al
	jz 15b
	mov $0x3f8, %dx
	mov %r8b, %al
	out %al, %dx
	ret

puts:
	movb (%rdi), %al
	test %al, %al
	jz 16f
	push %rdi
	call putc
	pop %rdi
	inc %rdi
	jmp puts
16:	ret

pattern:	.ascii "boot64-test"
spin:		.ascii "boot64-spin"
initrd_magic:	.ascii "INITRD-OK"
at0x:		.ascii "@0x"
ok:		.asciz "boot64: all checks passed\r\n"
failmsg:	.asciz "boot64: FAIL\r\n"
