/* An interrupt through the in-kernel PIC: remaps the master PIC to vectors 0x20-0x27,
 * unmasks IRQ 5 only, installs a handler for vector 0x25 in the IVT. Three times, with
 * interrupts off, it asks the test for one interrupt (write 1 to TEST_PORT; the test fires
 * the irqfd), then `sti; hlt`: the interrupt is taken at the hlt (STI's one-instruction
 * shadow), never between the two, so each one is awaited exactly once. The handler counts
 * (COUNTER_PORT) and acknowledges the PIC (EOI). Then the guest exits 0.
 * The request is made from the main loop, not from the handler: asked for in the handler,
 * the next interrupt would already be pending at its iret and nest the handler an unbounded
 * number of times before the loop checks its count (it did under nested KVM). */
.include "common.inc"
.code16
.globl _start
_start:
	guest_entry
	movw $handler, 0x25*4
	movw $0, 0x25*4+2
	pic_init_irq5

	movw $0, count
wait:
	cmpw $3, count
	jae done
	mov $TEST_PORT, %dx
	mov $1, %al
	out %al, %dx		/* ask for one interrupt; IF is 0, so it stays pending */
	sti
	hlt
	cli
	jmp wait
done:
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
	pop %dx
	pop %ax
	iret

count:	.word 0
