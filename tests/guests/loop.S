/* A busy loop for pause/resume: loads known values in EBX, ESI, EDI, EBP, then counts
 * in ECX and at 0x800 (u32) until the u32 at 0x804 becomes non-zero, and exits with
 * that value. */
.include "common.inc"
.code16
.globl _start
_start:
	xor %ax, %ax
	mov %ax, %ds
	mov $0x11223344, %ebx
	mov $0x55667788, %esi
	mov $0x99aabbcc, %edi
	mov $0x0ddf00d5, %ebp
	xor %ecx, %ecx
	movl $0, 0x800
1:	inc %ecx
	incl 0x800
	mov 0x804, %eax
	test %eax, %eax
	jz 1b
	mov $EXIT_PORT, %dx
	out %al, %dx
2:	jmp 2b
