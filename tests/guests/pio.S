/* Port I/O both ways: out of 1, 2 and 4 bytes to TEST_PORT, then in of 1, 2 and 4 bytes
 * from TEST_PORT+4 (the test answers 0x11, 0x2222, 0x33333333), each echoed back to
 * TEST_PORT+8 with the same width, then a rep outsb of "ok" to TEST_PORT. Exit 0. */
.include "common.inc"
.code16
.globl _start
_start:
	mov $TEST_PORT, %dx
	mov $0xab, %al
	out %al, %dx
	mov $0xbeef, %ax
	out %ax, %dx
	mov $0xcafef00d, %eax
	out %eax, %dx

	mov $TEST_PORT+4, %dx
	in %dx, %al
	mov $TEST_PORT+8, %dx
	out %al, %dx
	mov $TEST_PORT+4, %dx
	in %dx, %ax
	mov $TEST_PORT+8, %dx
	out %ax, %dx
	mov $TEST_PORT+4, %dx
	in %dx, %eax
	mov $TEST_PORT+8, %dx
	out %eax, %dx

	mov $TEST_PORT, %dx
	mov $msg, %si
	mov $2, %cx
	cld
	rep outsb
	exit_with 0
msg:	.ascii "ok"
