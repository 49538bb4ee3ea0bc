/* The embedded demo guest: prints a greeting on the 8250 UART at 0x3f8 (waiting for the
 * transmitter to be empty before each byte, as a driver does), then exits with code 0.
 * Its bytes are embedded in vmm/demo_guest.ts; a test checks they match this source. */
.include "common.inc"
.code16
.globl _start
_start:
	xor %ax, %ax
	mov %ax, %ds
	mov $msg, %si
	cld
next:
	lodsb
	test %al, %al
	jz done
	mov %al, %bl
	mov $0x3fd, %dx		/* LSR */
wait:
	in %dx, %al
	test $0x20, %al		/* THRE */
	jz wait
	mov $0x3f8, %dx		/* THR */
	mov %bl, %al
	out %al, %dx
	jmp next
done:
	exit_with 0
msg:	.asciz "Hello from a denovm guest: real mode, 8250 UART, KVM exits served by Deno.\r\n"
