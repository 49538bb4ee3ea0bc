/* Drives a management device (virtio-mmio at 0xd0000) through its admin virtqueue, by
 * polling: CAP_GET; VDEV_CREATE of a virtual rng; an MMU mapping of the first 64 KiB 1:1;
 * the status handshake and features through STATUS_SET/GET and FEAT_DRIVER_SET; its queue 0
 * through QUEUE_SET and QUEUE_ENABLE; a 32-byte read kicked through NOTIFY_KICK. Then it
 * marks 0x5100 = 1 and waits for the host to put a non-zero u32 at 0x5104 (a snapshot may
 * happen meanwhile), reads 32 bytes again, posts a buffer outside the mapping (the device
 * must report DEVICE_MMU_FAIL with NEEDS_RESET and an MMU_FAULT event), destroys the device
 * and checks that STATUS_GET now fails with NO_SUCH_DEVICE. The event queue (8 buffers of
 * 32 bytes at 0x5200) must carry the first read's INTERRUPT event. Polling, no interrupts.
 * Exit 0 on success, else the number of the failed check.
 * RAM: admin queue 0x3000/0x3100/0x3200, event queue 0x3c00/0x3d00/0x3e00, command 0x4000,
 * reply 0x4100, vdev queue 0x3800/0x3900/0x3a00, random bytes 0x6000 and 0x6100. */
.include "common.inc"
.include "virtio.inc"
.set VID, 0x5000

/* admin_hdr VDEV, CLASS, COMMAND: the command header at 0x4000 (VDEV from memory if 0xffff). */
.macro admin_hdr vdev, cls, cmd
	.if \vdev == 0xffff
	movl VID, %eax
	movl %eax, 0x4000
	.else
	movl $\vdev, 0x4000
	.endif
	movl $0, 0x4004
	movw $\cls, 0x4008
	movw $\cmd, 0x400a
.endm

/* admin_send OUTLEN, INLEN, CODE: queue the command (OUTLEN bytes with its header) and a
 * reply buffer of 8 + INLEN bytes, notify, and wait for the used entry. */
.macro admin_send outlen, inlen, code
	set_desc 0x3000, 0, 0x4000, \outlen, 1, 1
	set_desc 0x3000, 1, 0x4100, 8+\inlen, 2, 0
	movb $0xff, 0x4100
	movw 0x3102, %bx
	mov %bx, %si
	and $3, %si
	shl $1, %si
	movw $0, 0x3104(%si)
	inc %bx
	movw %bx, 0x3102
	reg_write 0x050, 0
	movw $\code, PROGRESS
7:	cmpw %bx, 0x3202
	jne 7b
	movw $0, PROGRESS
.endm

/* admin_cmd OUTLEN, INLEN, CODE: admin_send, then exit CODE unless the ack is OK. */
.macro admin_cmd outlen, inlen, code
	admin_send \outlen, \inlen, \code
	movzbl 0x4100, %eax
	check_eq %eax, 0, \code
.endm

/* status_set VALUE, CODE */
.macro status_set value, code
	admin_hdr 0xffff, 4, 0
	movb $\value, 0x400c
	admin_cmd 13, 0, \code
.endm

/* rng_read BUF, IDX, CODE: 32 bytes into BUF through the vdev's queue (avail idx IDX),
 * kicked through the admin queue; checks the length and that not all bytes are 0. */
.macro rng_read buf, idx, code
	set_desc 0x3800, 0, \buf, 32, 2, 0
	movw $0, 0x3904+2*((\idx-1)&3)
	movw $\idx, 0x3902
	admin_hdr 0xffff, 8, 0
	movw $0, 0x400c
	admin_cmd 14, 0, \code
	wait_used 0x3a00, \idx, \code+1
	movl 0x3a08+8*((\idx-1)&3), %eax
	check_eq %eax, 32, \code+2
	mov $\buf, %si
	mov $32, %cx
	xor %dl, %dl
1:	lodsb
	or %al, %dl
	loop 1b
	test %dl, %dl
	jnz 2f
	exit_with \code+3
2:
.endm

.code16
.globl _start
_start:
	guest_entry
	mov $0xd000, %ax
	mov %ax, %fs
	/* The management device (type 0xad): VERSION_1 and VIRTIO_F_ADMIN_VQ (bit 41). */
	virtio_handshake 0xad, 0, 1, 0x201
	virtio_queue0 4, 0x3000, 0x3100, 0x3200, 6
	/* The event queue (1): 8 device-writable buffers of 32 bytes, all made available. */
	reg_write 0x030, 1
	reg_write 0x038, 8
	reg_write 0x080, 0x3c00
	reg_write 0x084, 0
	reg_write 0x090, 0x3d00
	reg_write 0x094, 0
	reg_write 0x0a0, 0x3e00
	reg_write 0x0a4, 0
	reg_write 0x044, 1
	xor %bx, %bx
4:	mov %bx, %si
	shl $4, %si
	mov %bx, %ax
	shl $5, %ax
	add $0x5200, %ax
	movzwl %ax, %eax
	movl %eax, 0x3c00(%si)
	movl $0, 0x3c04(%si)
	movl $32, 0x3c08(%si)
	movw $2, 0x3c0c(%si)
	mov %bx, %si
	shl $1, %si
	movw %bx, 0x3d04(%si)
	inc %bx
	cmp $8, %bx
	jne 4b
	movw $8, 0x3d02
	reg_write 0x070, 15
	reg_write 0x050, 1

	/* CAP_GET on vdev_id 0: the VDEV capability. */
	admin_hdr 0, 0, 0
	admin_cmd 12, 8, 10
	movl 0x4108, %eax
	test $1, %eax
	jnz 1f
	exit_with 11
1:
	/* VDEV_CREATE: device type 4 (rng), all features; the id comes back. */
	admin_hdr 0, 2, 0
	movl $4, 0x400c
	movl $0, 0x4010
	movl $0xffffffff, 0x4014
	movl $0xffffffff, 0x4018
	admin_cmd 28, 8, 12
	movl 0x4108, %eax
	movl %eax, VID

	/* MMU_MAP: I/O addresses 0-64 KiB are guest RAM 0-64 KiB. */
	admin_hdr 0xffff, 9, 0
	movl $0, 0x400c
	movl $0, 0x4010
	movl $0, 0x4014
	movl $0, 0x4018
	movl $0x10000, 0x401c
	movl $0, 0x4020
	admin_cmd 36, 0, 13

	/* ACKNOWLEDGE, DRIVER, VERSION_1, FEATURES_OK and its re-read. */
	status_set 1, 14
	status_set 3, 15
	admin_hdr 0xffff, 3, 1
	movl $0, 0x400c
	movl $1, 0x4010
	admin_cmd 20, 0, 16
	status_set 11, 17
	admin_hdr 0xffff, 4, 1
	admin_cmd 12, 1, 18
	movzbl 0x4108, %eax
	check_eq %eax, 11, 19

	/* QUEUE_SET queue 0, size 4, rings at 0x3800/0x3900/0x3a00; QUEUE_ENABLE; DRIVER_OK. */
	admin_hdr 0xffff, 7, 1
	movw $0, 0x400c
	movw $4, 0x400e
	movl $0, 0x4010
	movl $0x3800, 0x4014
	movl $0, 0x4018
	movl $0x3900, 0x401c
	movl $0, 0x4020
	movl $0x3a00, 0x4024
	movl $0, 0x4028
	admin_cmd 44, 0, 20
	admin_hdr 0xffff, 7, 2
	movw $0, 0x400c
	admin_cmd 14, 0, 21
	status_set 15, 22

	rng_read 0x6000, 1, 30

	/* The read's interrupt arrived as an event: vdev_id, type 1, used-buffer bit. */
	wait_used 0x3e00, 1, 35
	movl 0x5200, %eax
	cmpl VID, %eax
	je 5f
	exit_with 36
5:	movzwl 0x5208, %eax
	check_eq %eax, 1, 37
	movl 0x520c, %eax
	test $1, %eax
	jnz 6f
	exit_with 38
6:

	/* Wait for the host's go (it may snapshot and restore the VM meanwhile). */
	movl $1, 0x5100
	movw $40, PROGRESS
3:	cmpl $0, 0x5104
	je 3b
	movw $0, PROGRESS

	rng_read 0x6100, 2, 50

	/* A buffer at I/O address 0x20000, outside the mapping: MMU_FAIL | NEEDS_RESET, and an
	 * MMU_FAULT event (type 2) naming that address among the events. */
	set_desc 0x3800, 0, 0x20000, 16, 2, 0
	movw $0, 0x3904+2*2
	movw $3, 0x3902
	admin_hdr 0xffff, 8, 0
	movw $0, 0x400c
	admin_cmd 14, 0, 70
	admin_hdr 0xffff, 4, 1
	admin_cmd 12, 1, 71
	movzbl 0x4108, %eax
	check_eq %eax, 0x6f, 72
	mov $0x5200, %si
20:	cmpw $2, 8(%si)
	jne 21f
	cmpl $0x20000, 16(%si)
	je 22f
21:	add $32, %si
	cmp $0x5300, %si
	jne 20b
	exit_with 73
22:

	/* VDEV_DESTROY, then the id is gone: STATUS_GET fails with NO_SUCH_DEVICE (7). */
	admin_hdr 0xffff, 2, 1
	admin_cmd 12, 0, 60
	admin_hdr 0xffff, 4, 1
	admin_send 12, 1, 61
	movzbl 0x4100, %eax
	check_eq %eax, 1, 62
	movzwl 0x4102, %eax
	check_eq %eax, 7, 63

	exit_with 0
