/* The 8250 UART with interrupts, and the i8042 reset. Sets up COM1 (8N1, FIFO, receive
 * interrupts, OUT2), unmasks IRQ 4 (vector 0x24), prints "ready\r\n", and halts; its
 * handler reads every received byte and echoes it upper-cased. After a newline it prints
 * "bye\r\n" and resets the machine through the i8042 (0xFE to port 0x64). */
.include "common.inc"
.code16
.globl _start

.set COM1, 0x3f8

_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov $0x7000, %sp
	cld
	movw $handler, 0x24*4
	movw $0, 0x24*4+2
	movb $0, done

	mov $COM1+3, %dx
	mov $0x03, %al		/* LCR: 8N1 */
	out %al, %dx
	mov $COM1+2, %dx
	mov $0x07, %al		/* FCR: FIFO on, clear both */
	out %al, %dx
	mov $COM1+4, %dx
	mov $0x0b, %al		/* MCR: DTR, RTS, OUT2 */
	out %al, %dx
	mov $COM1+1, %dx
	mov $0x01, %al		/* IER: received data */
	out %al, %dx
	pic_init 0xef		/* IRQ 4 only */

	mov $ready, %si
	call puts
	sti
3:	hlt
	cmpb $1, done
	jne 3b
	cli
	mov $bye, %si
	call puts
	mov $0xfe, %al
	out %al, $0x64		/* i8042: pulse reset */
4:	jmp 4b

/* putc: AL to THR once LSR says the transmitter is empty (clobbers DX, AH). */
putc:
	mov %al, %ah
	mov $COM1+5, %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	mov $COM1, %dx
	mov %ah, %al
	out %al, %dx
	ret

/* puts: the NUL-terminated string at SI. */
puts:
	lodsb
	test %al, %al
	jz 2f
	call putc
	jmp puts
2:	ret

handler:
	push %ax
	push %dx
5:	mov $COM1+5, %dx
	in %dx, %al
	test $1, %al		/* LSR: data ready? */
	jz 7f
	mov $COM1, %dx
	in %dx, %al
	cmp $0x0a, %al
	jne 6f
	movb $1, done
	jmp 5b
6:	cmp $0x61, %al
	jb 8f
	cmp $0x7a, %al
	ja 8f
	sub $0x20, %al
8:	call putc
	jmp 5b
7:	mov $0x20, %al
	out %al, $0x20		/* EOI */
	pop %dx
	pop %ax
	iret

done:	.byte 0
ready:	.asciz "ready\r\n"
bye:	.asciz "bye\r\n"
