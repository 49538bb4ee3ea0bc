/* Benchmark: 100000 one-byte writes to COUNTER_PORT, then exit 0. */
.include "common.inc"
.code16
.globl _start
_start:
	mov $100000, %ecx
	mov $COUNTER_PORT, %dx
1:	out %al, %dx
	dec %ecx
	jnz 1b
	exit_with 0
