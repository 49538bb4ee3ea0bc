/* A store that an ioeventfd catches: u32 writes of 7 then 3 to 0xd0050 (DS = 0xd000).
 * With datamatch 7 only the first signals the eventfd; the second reaches the bus. A
 * port write of 1 to TEST_PORT+0x10 is caught by a PIO ioeventfd. Exit 0. */
.include "common.inc"
.code16
.globl _start
_start:
	mov $0xd000, %ax
	mov %ax, %ds
	movl $7, 0x50
	movl $3, 0x50
	xor %ax, %ax
	mov %ax, %ds
	mov $TEST_PORT+0x10, %dx
	mov $1, %al
	out %al, %dx
	exit_with 0
