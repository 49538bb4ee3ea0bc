/* Writes 200 'x' and a newline to the UART's transmit register (0x3f8) without looking at
 * LSR in between (so no access of it exits), then, if the host put a non-zero byte at
 * 0x5000, exits with 0; otherwise halts with interrupts off (HLT stays in the kernel with
 * the in-kernel irqchip: no exit follows the last write). */
.include "common.inc"
.code16
.globl _start
_start:
	guest_entry
	mov $200, %cx
	mov $0x3f8, %dx
	mov $0x78, %al
1:	out %al, %dx
	loop 1b
	mov $0x0a, %al
	out %al, %dx
	cmpb $0, 0x5000
	je 2f
	exit_with 0
2:	hlt
	jmp 2b
