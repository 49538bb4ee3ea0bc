/* The snapshot test guest: loops N times (N = the u32 the host puts at 0x6004), each time
 * writing sector (i % 128) of a virtio-blk disk (0xd0000) with 512 bytes of (i & 0xff) and
 * i in the first 4 bytes, and reading 16 bytes from virtio-rng (0xd1000); it checks every
 * completion (used index, status, length) and counts iterations at 0x6000. Polling, no
 * interrupts. Exit 0 after N iterations, else the number of the failed check. */
.include "common.inc"
.include "virtio.inc"
.code16
.globl _start
_start:
	guest_entry
	mov $0xd000, %ax
	mov %ax, %fs
	virtio_handshake 2, 0, 1
	virtio_queue0 8, 0x3000, 0x3100, 0x3200, 6
	reg_write 0x070, 15
	mov $0xd100, %ax
	mov %ax, %fs
	virtio_handshake 4, 0, 10
	virtio_queue0 8, 0x3400, 0x3500, 0x3600, 15
	reg_write 0x070, 15

	set_desc 0x3000, 0, 0x4000, 16, 1, 1	/* blk: header, data, status */
	set_desc 0x3000, 1, 0x4200, 512, 1, 2
	set_desc 0x3000, 2, 0x4400, 1, 2, 0
	set_desc 0x3400, 0, 0x4800, 16, 2, 0	/* rng: 16 bytes */
	movl $0, 0x6000

next:
	movl 0x6000, %esi		/* i */
	/* blk OUT sector i % 128 */
	movl $1, 0x4000
	movl $0, 0x4004
	mov %esi, %eax
	and $127, %eax
	movl %eax, 0x4008
	movl $0, 0x400c
	mov %esi, %eax
	mov $0x4200, %di
	mov $512, %cx
	rep stosb
	movl %esi, 0x4200
	movb $0xff, 0x4400
	/* publish both requests: ring[i % 8] = 0, idx = i + 1 */
	mov %si, %bx
	and $7, %bx
	shl $1, %bx
	movw $0, 0x3104(%bx)
	movw $0, 0x3504(%bx)
	lea 1(%esi), %eax
	movw %ax, 0x3102
	movw %ax, 0x3502
	mov $0xd000, %ax
	mov %ax, %fs
	reg_write 0x050, 0
	mov $0xd100, %ax
	mov %ax, %fs
	reg_write 0x050, 0

	lea 1(%esi), %edx		/* the used index both must reach */
	movw $20, PROGRESS
1:	cmpw %dx, 0x3202
	jne 1b
	movzbl 0x4400, %eax
	check_eq %eax, 0, 21
	movw $22, PROGRESS
3:	cmpw %dx, 0x3602
	jne 3b
	movw $0, PROGRESS
	mov %si, %bx
	and $7, %bx
	shl $3, %bx
	movl 0x3608(%bx), %eax		/* rng used.ring[i % 8].len */
	check_eq %eax, 16, 23

	incl 0x6000
	movl 0x6000, %eax
	cmpl 0x6004, %eax
	jb next
	exit_with 0
