/* Benchmark: 100000 u32 stores to the device at 0xd0000, then exit 0. */
.include "common.inc"
.code16
.globl _start
_start:
	mov $0xd000, %ax
	mov %ax, %ds
	mov $100000, %ecx
1:	mov %ecx, 0x0
	dec %ecx
	jnz 1b
	xor %ax, %ax
	mov %ax, %ds
	exit_with 0
