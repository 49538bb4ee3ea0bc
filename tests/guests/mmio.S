/* MMIO through the device thread: the test device sits at 0xd0000 (DS = 0xd000).
 * Writes 1, 2 and 4 bytes at offsets 0, 4, 8; reads a u32 at 0x10 (the test answers
 * 0x12345678) and writes it back at 0x14; reads a u8 at 0x18 and writes it at 0x1c. */
.include "common.inc"
.code16
.globl _start
_start:
	mov $0xd000, %ax
	mov %ax, %ds
	movb $0x5a, 0x0
	movw $0x1234, 0x4
	movl $0x89abcdef, 0x8
	mov 0x10, %eax
	mov %eax, 0x14
	mov 0x18, %al
	mov %al, 0x1c
	xor %ax, %ax
	mov %ax, %ds
	exit_with 0
