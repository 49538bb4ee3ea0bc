/* Drives two virtio-mmio devices by polling (no interrupts), notifying through ioeventfds:
 *   virtio-rng at 0xd0000: one 32-byte request, which must not come back all zeros;
 *   virtio-blk at 0xd1000: writes sector 2 ("DENOVM-BLK" then 0x5a), reads it back and
 *   compares, and reads sector 0 (the host wrote "HOSTDATA" there) into 0x4a00.
 * Exit 0 on success, else the number of the failed check.
 * RAM: rng queue 0x3000/0x3100/0x3200, blk queue 0x3400/0x3500/0x3600, buffers 0x4000+. */
.include "common.inc"
.include "virtio.inc"
.code16
.globl _start
_start:
	guest_entry

	/* ---- virtio-rng ---- */
	mov $0xd000, %ax
	mov %ax, %fs
	virtio_handshake 4, 0, 1
	virtio_queue0 4, 0x3000, 0x3100, 0x3200, 6
	reg_write 0x070, 15
	set_desc 0x3000, 0, 0x4000, 32, 2, 0
	movw $0, 0x3104
	movw $1, 0x3102
	reg_write 0x050, 0
	wait_used 0x3200, 1, 7
	movl 0x3208, %eax
	check_eq %eax, 32, 8
	mov $0x4000, %si
	mov $32, %cx
	xor %bl, %bl
1:	lodsb
	or %al, %bl
	loop 1b
	test %bl, %bl
	jnz 2f
	exit_with 9
2:
	/* ---- virtio-blk ---- */
	mov $0xd100, %ax
	mov %ax, %fs
	virtio_handshake 2, 0, 20
	virtio_queue0 4, 0x3400, 0x3500, 0x3600, 25
	reg_write 0x070, 15

	/* sector 2 data: "DENOVM-BLK" then 502 bytes of 0x5a */
	mov $0x4200, %di
	mov $0x5a, %al
	mov $512, %cx
	rep stosb
	movl $0x4f4e4544, 0x4200	/* "DENO" */
	movl $0x422d4d56, 0x4204	/* "VM-B" */
	movw $0x4b4c, 0x4208		/* "LK" */

	/* OUT sector 2: header 0x4100, data 0x4200, status 0x4400 */
	movl $1, 0x4100
	movl $0, 0x4104
	movl $2, 0x4108
	movl $0, 0x410c
	movb $0xff, 0x4400
	set_desc 0x3400, 0, 0x4100, 16, 1, 1
	set_desc 0x3400, 1, 0x4200, 512, 1, 2
	set_desc 0x3400, 2, 0x4400, 1, 2, 0
	movw $0, 0x3504
	movw $1, 0x3502
	reg_write 0x050, 0
	wait_used 0x3600, 1, 26
	movzbl 0x4400, %eax
	check_eq %eax, 0, 27

	/* IN sector 2 into 0x4600, status 0x4800 */
	movl $0, 0x4500
	movl $0, 0x4504
	movl $2, 0x4508
	movl $0, 0x450c
	movb $0xff, 0x4800
	set_desc 0x3400, 0, 0x4500, 16, 1, 1
	set_desc 0x3400, 1, 0x4600, 512, 3, 2
	set_desc 0x3400, 2, 0x4800, 1, 2, 0
	movw $0, 0x3506
	movw $2, 0x3502
	reg_write 0x050, 0
	wait_used 0x3600, 2, 28
	movzbl 0x4800, %eax
	check_eq %eax, 0, 29
	movl 0x3610, %eax		/* used.ring[1].len = 512 + status */
	check_eq %eax, 513, 30
	mov $0x4200, %si
	mov $0x4600, %di
	mov $512, %cx
	repe cmpsb
	je 3f
	exit_with 31
3:
	/* IN sector 0 into 0x4a00, status 0x4c00 */
	movl $0, 0x4900
	movl $0, 0x4904
	movl $0, 0x4908
	movl $0, 0x490c
	movb $0xff, 0x4c00
	set_desc 0x3400, 0, 0x4900, 16, 1, 1
	set_desc 0x3400, 1, 0x4a00, 512, 3, 2
	set_desc 0x3400, 2, 0x4c00, 1, 2, 0
	movw $0, 0x3508
	movw $3, 0x3502
	reg_write 0x050, 0
	wait_used 0x3600, 3, 32
	movzbl 0x4c00, %eax
	check_eq %eax, 0, 33
	movl 0x4a00, %eax
	check_eq %eax, 0x54534f48, 34	/* "HOST" */
	exit_with 0
