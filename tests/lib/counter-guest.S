# A boot sector that counts: forever, it increments a 32-bit counter and
# writes 8 sectors full of it (1024 copies) at LBA 1 of the first two hard
# disks, through the BIOS (INT 13h, one request of 4 KiB per disk). A
# snapshot of its disks is consistent when the 1024 copies agree.
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
    sti
next:
    incl counter
    mov $0x8000, %di
    mov counter, %eax
    mov $1024, %cx
    cld
    rep stosl
    mov $0x80, %dl
write:
    mov $0x0308, %ax        # AH=03h write, AL=8 sectors
    mov $0x0002, %cx        # cylinder 0, sector 2 (LBA 1)
    xor %dh, %dh            # head 0
    mov $0x8000, %bx        # ES:BX = the buffer
    push %dx
    int $0x13
    pop %dx
    inc %dl
    cmp $0x82, %dl
    jne write
    jmp next
counter:
    .long 0
    .org 510
    .byte 0x55, 0xaa
