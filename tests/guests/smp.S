/* Two vCPUs at once: each enters with its id in EAX (set by the test), adds 1 to its own
 * u32 at 0x800 + 4*id 100000 times while writing the running count to COUNTER_PORT, then
 * exits with 0x10 + id. */
.include "common.inc"
.code16
.globl _start
_start:
	xor %bx, %bx
	mov %bx, %ds
	mov %ax, %bx
	shl $2, %bx
	mov %ax, %si
	mov $100000, %ecx
1:	incl 0x800(%bx)
	mov $COUNTER_PORT, %dx
	mov %cx, %ax
	out %ax, %dx
	dec %ecx
	jnz 1b
	mov %si, %ax
	add $0x10, %al
	mov $EXIT_PORT, %dx
	out %al, %dx
2:	jmp 2b
