/* A virtio-mmio driver in real mode, for the dummy echo device at 0xd0000 (FS = 0xd000)
 * with its interrupt on IRQ 5 (vector 0x25). It does the modern handshake with the
 * FEATURES_OK re-read (VERSION_1 + EVENT_IDX), sets up queue 0 (4 entries), goes live,
 * adds one chain ("hello" out, 16 bytes in), notifies (caught by an ioeventfd), halts
 * until the interrupt handler has read and acknowledged InterruptStatus, then checks the
 * used ring and the reversed data. It repeats the request N times (N = the u32 the host
 * puts at 0x5010, 1 if 0) with used_event set so that every completion interrupts; the
 * benchmark times that loop. Exit 0 on success, else the number of the failed check.
 *
 * RAM: descriptors 0x3000, avail 0x3100, used 0x3200, out 0x4000, in 0x4100, flag 0x5000.
 */
.include "common.inc"
.include "virtio.inc"
.code16
.globl _start

_start:
	guest_entry
	mov $0xd000, %ax
	mov %ax, %fs

	virtio_handshake 0x7ffe, 0x20000000, 1	/* EVENT_IDX */
	virtio_queue0 4, 0x3000, 0x3100, 0x3200, 6

	/* interrupt handler for IRQ 5 at vector 0x25, PIC remapped to 0x20 */
	movw $handler, 0x25*4
	movw $0, 0x25*4+2
	pic_init_irq5

	reg_write 0x070, 15		/* DRIVER_OK */

	/* one chain: desc 0 = "hello" (readable, NEXT 1), desc 1 = 16 writable bytes */
	movl $0x4000, 0x3000
	movl $0, 0x3004
	movl $5, 0x3008
	movw $1, 0x300c
	movw $1, 0x300e
	movl $0x4100, 0x3010
	movl $0, 0x3014
	movl $16, 0x3018
	movw $2, 0x301c
	movw $0, 0x301e
	movl $0x6c6c6568, 0x4000	/* "hell" */
	movb $0x6f, 0x4004		/* "o" */
	movl 0x5010, %ecx		/* iterations */
	test %ecx, %ecx
	jnz 6f
	inc %ecx
6:	xor %esi, %esi			/* i: requests sent */
next:
	movw $0, 0x5000
	mov %si, %bx
	and $3, %bx
	shl $1, %bx
	movw $0, 0x3104(%bx)		/* avail.ring[i % 4] = head 0 */
	movw %si, 0x310c		/* used_event = i: interrupt when entry i is used */
	inc %si
	movw %si, 0x3102		/* avail.idx = i + 1 */
	reg_write 0x050, 0		/* QueueNotify: an ioeventfd catches it */
	sti
5:	hlt
	cmpw $1, 0x5000
	jne 5b
	cli
	movzwl 0x3202, %eax		/* used.idx follows */
	movzwl %si, %edx
	cmpl %edx, %eax
	je 7f
	exit_with 12
7:	dec %ecx
	jnz next

	movl 0x5010, %eax		/* with N = 1 the ring holds exactly one used entry */
	cmpl $1, %eax
	ja 8f
	movzwl 0x3202, %eax		/* used.idx */
	check_eq %eax, 1, 7
8:	movl 0x3204, %eax		/* used.ring[0].id */
	check_eq %eax, 0, 8
	movl 0x3208, %eax		/* used.ring[0].len */
	check_eq %eax, 5, 9
	movl 0x4100, %eax
	check_eq %eax, 0x656c6c6f, 10	/* "olle" */
	movzbl 0x4104, %eax
	check_eq %eax, 0x68, 10		/* "h" */
	movzwl 0x5002, %eax
	check_eq %eax, 1, 11		/* the handler saw a used-buffer interrupt */
	exit_with 0

handler:
	push %eax
	movl %fs:0x060, %eax		/* InterruptStatus */
	movl %eax, %fs:0x064		/* InterruptACK */
	movw %ax, 0x5002
	movw $1, 0x5000
	mov $0x20, %al
	out %al, $0x20			/* EOI */
	pop %eax
	iret
