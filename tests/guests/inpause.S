/* One port read the test pauses the VM during: `in` from TEST_PORT (the device answers
 * 0x5a and asks for a pause before it answers), then exit with the value read. The test
 * checks that the paused vCPU's registers already hold the completed `in`. */
.include "common.inc"
.code16
.globl _start
_start:
	xor %eax, %eax
	mov $TEST_PORT, %dx
	in %dx, %al
after_in:
	mov $EXIT_PORT, %dx
	out %al, %dx
1:	jmp 1b
