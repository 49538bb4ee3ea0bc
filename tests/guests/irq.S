/* An interrupt through the in-kernel PIC: remaps the master PIC to vectors 0x20-0x27,
 * unmasks IRQ 5 only, installs a handler for vector 0x25 in the IVT, enables interrupts,
 * tells the test it is ready (write 1 to TEST_PORT) and halts. The test fires the irqfd;
 * the handler counts (COUNTER_PORT), acknowledges the PIC (EOI) and sets a flag. After
 * three interrupts the guest exits 0. */
.include "common.inc"
.code16
.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	movw $handler, 0x25*4
	movw $0, 0x25*4+2
	/* ICW1: edge, cascade, ICW4 needed */
	pic_init_irq5

	movw $0, count
wait:
	mov $TEST_PORT, %dx
	mov $1, %al
	out %al, %dx
	sti
1:	hlt
	cmpw $3, count
	jb 1b
	cli
	exit_with 0

handler:
	push %ax
	push %dx
	incw %cs:count
	mov $COUNTER_PORT, %dx
	mov %cs:count, %ax
	out %ax, %dx
	mov $0x20, %al
	out %al, $0x20
	/* ask for the next one */
	mov $TEST_PORT, %dx
	mov $1, %al
	out %al, %dx
	pop %dx
	pop %ax
	iret

count:	.word 0
