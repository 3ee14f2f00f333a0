// SPDX-License-Identifier: MIT OR Apache-2.0

//! The instructions `mmio_matches_ram` and `mmio_strings` run on RAM and on
//! MMIO (see [`super::mmio`]). Each case is AT&T assembly whose memory
//! operands go through the pointer registers of its [`Meta`] (RBX, 0x100
//! into the window, unless it says otherwise); the other registers start
//! random. Several instructions in one case are separated by `;`, and a
//! `#` comment says what makes a case different from one with the same
//! code.

use libvmm::uapi::reg::{RAX, RBX, RCX, RDI, RSI, RSP};

use super::mmio::{cases, Area, Area::*, Fill, Meta, Need, AF, M, OF, PF, SF, ZF};

/// AND, OR, XOR, TEST: AF is undefined.
const LOGIC: Meta = Meta { undef: AF, ..M };
/// BT, BTS, BTR, BTC: OF, SF, AF and PF are undefined.
const BT: Meta = Meta { undef: OF | SF | AF | PF, ..M };
/// IMUL: SF, ZF, AF and PF are undefined.
const IMUL: Meta = Meta { undef: SF | ZF | AF | PF, ..M };
const MOVBE: Meta = Meta { need: Need::Movbe, ..M };
const SSE: Meta = Meta { need: Need::Sse, ..M };
/// A 16-byte SSE access: two 8-byte pieces.
const SSE2: Meta = Meta { need: Need::Sse, pieces: 2, ..M };
/// A 32-byte AVX access: four 8-byte pieces.
const AVX4: Meta = Meta { need: Need::Avx, pieces: 4, ..M };
/// A 16-byte AVX access.
const AVX2: Meta = Meta { need: Need::Avx, pieces: 2, ..M };
/// RBX at the window's first byte, for accesses across its edges (its
/// neighbours are RAM in both runs).
const EDGE: Meta = Meta { ptrs: &[(RBX, Win, 0)], ..M };
/// RSP in the window as well as RBX.
const STACK_IN_WIN: Meta = Meta { ptrs: &[(RBX, Win, 0x100), (RSP, Win, 0x800)], ..M };

/// A string case: `ptrs`, RCX = `count`, at least `exits` MMIO exits.
const fn string(ptrs: &'static [(u32, Area, i64)], count: u64, exits: usize) -> Meta {
    Meta { ptrs, min_exits: exits, ..M }.with(RCX, count)
}

const RAM_TO_WIN: &[(u32, Area, i64)] = &[(RSI, Ram, 0x100), (RDI, Win, 0x100)];
const WIN_TO_RAM: &[(u32, Area, i64)] = &[(RSI, Win, 0x100), (RDI, Ram, 0x100)];
const WIN_DI: &[(u32, Area, i64)] = &[(RDI, Win, 0x100)];
/// RDI 64 bytes before the window's end, RSI 64 bytes before its start.
const OUT_OF_WIN: &[(u32, Area, i64)] = &[(RSI, Ram, 0x100), (RDI, Win, 0xfc0)];
const INTO_WIN: &[(u32, Area, i64)] = &[(RSI, Win, -0x40), (RDI, Ram, 0x100)];
const CMPSB: Meta = string(RAM_TO_WIN, 100, 38);
const CMPSL: Meta = string(WIN_TO_RAM, 100, 14);
const CMPSB32: Meta = string(WIN_TO_RAM, 100, 38);
/// RSI one byte past RDI over 20 equal bytes: 20 iterations, each of
/// which reads two bytes; every byte but the first and the last is read
/// twice, and every read is the device's.
const OVERLAP: Meta = Meta {
    fill: Fill::Run { at: 0x100, n: 20 },
    ..string(&[(RSI, Win, 0x101), (RDI, Win, 0x100)], 100, 40)
};
/// 0x5a is 0x60 bytes on: 97 elements.
const SCAS: Meta = string(WIN_DI, 100, 97).with(RAX, 0x5a);

cases!(CASES64, vmm_guest_mmio64_start, vmm_guest_mmio64_end, ".code64", [
        // MOV, both directions, every size.
        "movb %cl, (%rbx)",
        "movw %cx, 2(%rbx)",
        "movl %ecx, 4(%rbx)",
        "movq %rcx, 8(%rbx)",
        "movb (%rbx), %dl",
        "movw 2(%rbx), %dx",
        "movl 4(%rbx), %edx",
        "movq 8(%rbx), %rdx",
        "movb 1(%rbx), %ah",
        "movb %ch, 3(%rbx)",
        "movq %r9, -8(%rbx)",
        "movl 0x10(%rbx,%rsi,4), %r10d" => M.with(RSI, 3),
        "movq 0x13(%rbx), %rcx",
        "movl %ecx, 0x1e(%rbx)",
        "movb $0x5a, (%rbx)",
        "movw $0x1234, 2(%rbx)",
        "movl $0x89abcdef, 4(%rbx)",
        "movq $-2, 8(%rbx)",
        "movnti %rax, 8(%rbx)",
        "movnti %ecx, 4(%rbx)",
        // MOVZX, MOVSX, MOVSXD.
        "movzbl (%rbx), %ecx",
        "movzbw 1(%rbx), %cx",
        "movzwq 2(%rbx), %rcx",
        "movzbq 7(%rbx), %r11",
        "movsbq 3(%rbx), %rcx",
        "movsbw (%rbx), %dx",
        "movswl 2(%rbx), %edx",
        "movslq 4(%rbx), %rdx",
        // The ALU group: r/m8 with a register and an imm8, r/m16 with an
        // imm16, r32 from memory, r/m64 with a register, r/m32 with an imm8.
        "addb %cl, 1(%rbx)",
        "addb $0x81, (%rbx)",
        "addw $0x1234, 2(%rbx)",
        "addl 4(%rbx), %edx",
        "addq %rax, 8(%rbx)",
        "addl $-3, 4(%rbx)",
        "orb %cl, 1(%rbx)" => LOGIC,
        "orb $0x81, (%rbx)" => LOGIC,
        "orw $0x1234, 2(%rbx)" => LOGIC,
        "orl 4(%rbx), %edx" => LOGIC,
        "orq %rax, 8(%rbx)" => LOGIC,
        "orl $-3, 4(%rbx)" => LOGIC,
        "adcb %cl, 1(%rbx)",
        "adcb $0x81, (%rbx)",
        "adcw $0x1234, 2(%rbx)",
        "adcl 4(%rbx), %edx",
        "adcq %rax, 8(%rbx)",
        "adcl $-3, 4(%rbx)",
        "sbbb %cl, 1(%rbx)",
        "sbbb $0x81, (%rbx)",
        "sbbw $0x1234, 2(%rbx)",
        "sbbl 4(%rbx), %edx",
        "sbbq %rax, 8(%rbx)",
        "sbbl $-3, 4(%rbx)",
        "andb %cl, 1(%rbx)" => LOGIC,
        "andb $0x81, (%rbx)" => LOGIC,
        "andw $0x1234, 2(%rbx)" => LOGIC,
        "andl 4(%rbx), %edx" => LOGIC,
        "andq %rax, 8(%rbx)" => LOGIC,
        "andl $-3, 4(%rbx)" => LOGIC,
        "subb %cl, 1(%rbx)",
        "subb $0x81, (%rbx)",
        "subw $0x1234, 2(%rbx)",
        "subl 4(%rbx), %edx",
        "subq %rax, 8(%rbx)",
        "subl $-3, 4(%rbx)",
        "xorb %cl, 1(%rbx)" => LOGIC,
        "xorb $0x81, (%rbx)" => LOGIC,
        "xorw $0x1234, 2(%rbx)" => LOGIC,
        "xorl 4(%rbx), %edx" => LOGIC,
        "xorq %rax, 8(%rbx)" => LOGIC,
        "xorl $-3, 4(%rbx)" => LOGIC,
        "cmpb %cl, 1(%rbx)",
        "cmpb $0x81, (%rbx)",
        "cmpw $0x1234, 2(%rbx)",
        "cmpl 4(%rbx), %edx",
        "cmpq %rax, 8(%rbx)",
        "cmpl $-3, 4(%rbx)",
        // TEST, NOT, NEG, INC, DEC.
        "testb $0x81, (%rbx)" => LOGIC,
        "testw %cx, 2(%rbx)" => LOGIC,
        "testl $0x80000001, 4(%rbx)" => LOGIC,
        "testq %rax, 8(%rbx)" => LOGIC,
        "notb 3(%rbx)",
        "notw 2(%rbx)",
        "notl 4(%rbx)",
        "notq (%rbx)",
        "negb (%rbx)",
        "negw 2(%rbx)",
        "negl 4(%rbx)",
        "negq 8(%rbx)",
        "movq $0, 8(%rbx); negq 8(%rbx)",
        "incb (%rbx)",
        "incw 2(%rbx)",
        "decl 4(%rbx)",
        "decq 8(%rbx)",
        "movl $0x7fffffff, 4(%rbx); incl 4(%rbx)",
        // BT, BTS, BTR, BTC with an immediate and with a register offset
        // that reaches outside the operand (forwards and backwards).
        "btl $5, 4(%rbx)" => BT,
        "btsq $63, 8(%rbx)" => BT,
        "btrw $3, 2(%rbx)" => BT,
        "btcl $31, 4(%rbx)" => BT,
        "btw $17, 2(%rbx)" => BT,
        "btl %ecx, (%rbx)" => BT.with(RCX, 77),
        "btsq %rcx, (%rbx)" => BT.with(RCX, u64::MAX),
        "btrl %ecx, 8(%rbx)" => BT.with(RCX, 200),
        "btcw %cx, 2(%rbx)" => BT.with(RCX, 0x23),
        "btl %ecx, (%rbx)" => BT.with(RCX, 0xffff_ffff),
        // XCHG, CMPXCHG (equal, then not), XADD.
        "xchgb %cl, 1(%rbx)",
        "xchgw %cx, 2(%rbx)",
        "xchgl 4(%rbx), %edx",
        "xchgq %rax, 8(%rbx)",
        "movl 4(%rbx), %eax; cmpxchgl %ecx, 4(%rbx)",
        "cmpxchgl %ecx, 4(%rbx)",
        "movq 8(%rbx), %rax; cmpxchgq %rdx, 8(%rbx)",
        "cmpxchgq %rdx, 8(%rbx)",
        "movb (%rbx), %al; cmpxchgb %cl, (%rbx)",
        "cmpxchgw %cx, 2(%rbx)",
        "xaddb %cl, 1(%rbx)",
        "xaddw %cx, 2(%rbx)",
        "xaddl %edx, 4(%rbx)",
        "xaddq %rax, 8(%rbx)",
        // LOCK.
        "lock addl %ecx, 4(%rbx)",
        "lock orb $0x81, (%rbx)" => LOGIC,
        "lock adcq %rax, 8(%rbx)",
        "lock sbbw $0x1234, 2(%rbx)",
        "lock andq $-16, 8(%rbx)" => LOGIC,
        "lock subl $7, 4(%rbx)",
        "lock xorw %cx, 2(%rbx)" => LOGIC,
        "lock notq 8(%rbx)",
        "lock negl 4(%rbx)",
        "lock incw 2(%rbx)",
        "lock decb 1(%rbx)",
        "lock btsl $7, 4(%rbx)" => BT,
        "lock btrq %rcx, 8(%rbx)" => BT.with(RCX, 70),
        "lock btcw $15, 2(%rbx)" => BT,
        "lock xchgl %ecx, 4(%rbx)",
        "lock xaddq %rax, 8(%rbx)",
        "movq 8(%rbx), %rax; lock cmpxchgq %rdx, 8(%rbx)",
        "lock cmpxchgl %ecx, 4(%rbx)",
        // IMUL.
        "imull 4(%rbx), %ecx" => IMUL,
        "imulq $-7, 8(%rbx), %rdx" => IMUL,
        "imulw $300, 2(%rbx), %cx" => IMUL,
        // MOVBE.
        "movbel 4(%rbx), %ecx" => MOVBE,
        "movbew %cx, 2(%rbx)" => MOVBE,
        "movbeq %rdx, 8(%rbx)" => MOVBE,
        "movbeq 8(%rbx), %r12" => MOVBE,
        // PUSH and POP with a memory operand (the stack is RAM).
        "pushq 8(%rbx)",
        "popq 16(%rbx)",
        "pushw 2(%rbx)",
        "popw 4(%rbx)",
        "pushq 8(%rbx); popq 24(%rbx)",
        "pushq 8(%rbx) # the stack in the window too" => STACK_IN_WIN,
        "popq 0x10(%rbx) # the stack in the window too" => STACK_IN_WIN,
        // SSE moves (16 bytes: two 8-byte pieces), and 8 and 4 bytes.
        "movdqu 0x10(%rbx), %xmm1; movq %xmm1, %rcx; psrldq $8, %xmm1; movq %xmm1, %rdx" => SSE2,
        "movq %rax, %xmm2; movq %rdx, %xmm3; punpcklqdq %xmm3, %xmm2; movdqu %xmm2, 0x20(%rbx)"
            => SSE2,
        "movups 0x18(%rbx), %xmm4; movq %xmm4, %rcx; movhlps %xmm4, %xmm4; movq %xmm4, %rdx"
            => SSE2,
        "movq %rax, %xmm5; movq %rcx, %xmm6; punpcklqdq %xmm6, %xmm5; movups %xmm5, 0x28(%rbx)"
            => SSE2,
        "movdqa 0x30(%rbx), %xmm1; movq %xmm1, %rcx; psrldq $8, %xmm1; movq %xmm1, %rdx" => SSE2,
        "movq %rax, %xmm2; movq %rdx, %xmm3; punpcklqdq %xmm3, %xmm2; movaps %xmm2, 0x40(%rbx)"
            => SSE2,
        "movdqa 0x38(%rbx), %xmm1 # misaligned: #GP" => Meta { min_exits: 0, ..SSE },
        "movq 8(%rbx), %xmm1; movq %xmm1, %rcx" => Meta { pieces: 1, ..SSE },
        "movq %rax, %xmm1; movq %xmm1, 0x10(%rbx)" => Meta { pieces: 1, ..SSE },
        "movd 4(%rbx), %xmm1; movd %xmm1, %ecx" => SSE,
        "movd %eax, %xmm1; movd %xmm1, 4(%rbx)" => SSE,
        // AVX (XCR0 = 7 first): 32-byte and 16-byte VEX moves.
        "movl $7, %eax; xorl %edx, %edx; xorl %ecx, %ecx; xsetbv; vmovdqu 0x20(%rbx), %ymm1;
         vmovq %xmm1, %rax; vpextrq $1, %xmm1, %rcx; vextractf128 $1, %ymm1, %xmm2;
         vmovq %xmm2, %rdx; vpextrq $1, %xmm2, %rsi" => AVX4,
        "movl $7, %eax; xorl %edx, %edx; xorl %ecx, %ecx; xsetbv; vmovq %r8, %xmm1;
         vpinsrq $1, %r9, %xmm1, %xmm1; vmovq %r10, %xmm2; vpinsrq $1, %r11, %xmm2, %xmm2;
         vinsertf128 $1, %xmm2, %ymm1, %ymm1; vmovdqu %ymm1, 0x40(%rbx)" => AVX4,
        "movl $7, %eax; xorl %edx, %edx; xorl %ecx, %ecx; xsetbv; vmovdqu 0x10(%rbx), %xmm3;
         vmovq %xmm3, %rax; vpextrq $1, %xmm3, %rcx" => AVX2,
        "movl $7, %eax; xorl %edx, %edx; xorl %ecx, %ecx; xsetbv; vmovq %r8, %xmm1;
         vpinsrq $1, %r9, %xmm1, %xmm1; vmovups %xmm1, 0x50(%rbx)" => AVX2,
        // Across the window's edges: RAM, then MMIO, and the reverse.
        "movq -4(%rbx), %rcx" => EDGE,
        "movq %rcx, -4(%rbx)" => EDGE,
        "movl -1(%rbx), %ecx" => EDGE,
        "movq -3(%rbx), %rdx" => EDGE,
        "movw -1(%rbx), %cx" => EDGE,
        "addq %rax, -4(%rbx)" => EDGE,
        "movq 0xffc(%rbx), %rcx" => EDGE,
        "movl %ecx, 0xffd(%rbx)" => EDGE,
        "movq %rdx, 0xffa(%rbx)" => EDGE,
        "movdqu -8(%rbx), %xmm1; movq %xmm1, %rcx; psrldq $8, %xmm1; movq %xmm1, %rdx"
            => Meta { need: Need::Sse, ..EDGE },
        "movq %rax, %xmm2; movq %rdx, %xmm3; punpcklqdq %xmm3, %xmm2; movdqu %xmm2, 0xff4(%rbx)"
            => Meta { need: Need::Sse, ..EDGE },
]);

cases!(CASES32, vmm_guest_mmio32_start, vmm_guest_mmio32_end, ".code32", [
        "movb %cl, (%ebx)",
        "movw 2(%ebx), %dx",
        "movl %ecx, 4(%ebx)",
        "movl 4(%ebx), %edx",
        "movl $0x89abcdef, 8(%ebx)",
        "movb 1(%ebx), %dh",
        "movzbl 1(%ebx), %ecx",
        "movswl 2(%ebx), %edx",
        "addl %ecx, 4(%ebx)",
        "adcb $0x81, 1(%ebx)",
        "sbbw 2(%ebx), %dx",
        "andl $-3, 4(%ebx)" => LOGIC,
        "orw %cx, 2(%ebx)" => LOGIC,
        "xorb 3(%ebx), %dl" => LOGIC,
        "subl $0x12345678, 8(%ebx)",
        "cmpw $7, 2(%ebx)",
        "testl %ecx, 4(%ebx)" => LOGIC,
        "notl 4(%ebx)",
        "negw 2(%ebx)",
        "incl 4(%ebx)",
        "decb 1(%ebx)",
        "btsl $9, 4(%ebx)" => BT,
        "btl %ecx, (%ebx)" => BT.with(RCX, 77),
        "xchgl %ecx, 4(%ebx)",
        "movl 4(%ebx), %eax; cmpxchgl %ecx, 4(%ebx)",
        "cmpxchgl %ecx, 4(%ebx)",
        "lock xaddl %edx, 4(%ebx)",
        "lock orl $0x100, 8(%ebx)" => LOGIC,
        "imull 4(%ebx), %ecx" => IMUL,
        "pushl 4(%ebx)",
        "popl 8(%ebx)",
        "pushw 2(%ebx)",
        "movbel 4(%ebx), %ecx" => MOVBE,
        "movdqu 0x10(%ebx), %xmm1; movd %xmm1, %eax; psrldq $4, %xmm1; movd %xmm1, %ecx;
         psrldq $4, %xmm1; movd %xmm1, %edx; psrldq $4, %xmm1; movd %xmm1, %esi" => SSE2,
        "movd %eax, %xmm1; movd %ecx, %xmm2; punpckldq %xmm2, %xmm1; movd %edx, %xmm2;
         movd %esi, %xmm3; punpckldq %xmm3, %xmm2; punpcklqdq %xmm2, %xmm1;
         movdqu %xmm1, 0x20(%ebx)" => SSE2,
        "movq 8(%ebx), %xmm1; movd %xmm1, %ecx; psrlq $32, %xmm1; movd %xmm1, %edx"
            => Meta { pieces: 1, ..SSE },
        "movl -2(%ebx), %ecx" => EDGE,
        "movl %ecx, 0xffe(%ebx)" => EDGE,
]);

cases!(STRINGS64, vmm_guest_mmio_str64_start, vmm_guest_mmio_str64_end, ".code64", [
        "rep movsb" => string(RAM_TO_WIN, 100, 100),
        "rep movsl" => string(WIN_TO_RAM, 100, 100),
        "rep movsq # window to window" => string(&[(RSI, Win, 0x100), (RDI, Win, 0x600)], 50, 100),
        "rep stosl" => string(WIN_DI, 100, 100),
        "rep stosb" => string(WIN_DI, 100, 100),
        "std; rep movsw; cld" => string(&[(RSI, Win, 0x800), (RDI, Ram, 0x800)], 100, 100),
        "std; rep stosq" => string(&[(RDI, Win, 0x800)], 40, 40),
        "lodsq; rep lodsw" => string(&[(RSI, Win, 0x100)], 20, 21),
        "repe cmpsb" => Meta { fill: Fill::Equal { at: 0x100, n: 37 }, ..CMPSB },
        "repe cmpsl" => Meta { fill: Fill::Equal { at: 0x100, n: 54 }, ..CMPSL },
        "repne scasb" => Meta { fill: Fill::Find { at: 0x160, byte: 0x5a }, ..SCAS },
        "repne scasq" => string(WIN_DI, 30, 30),
        "rep movsb # RCX = 0" => string(RAM_TO_WIN, 0, 0),
        "addr32 rep movsb" => string(RAM_TO_WIN, 100, 100),
        "rep movsb # out of the window's end" => string(OUT_OF_WIN, 200, 64),
        "rep movsl # into the window from below" => string(INTO_WIN, 100, 84),
        "movsb; stosw; cmpsb; scasl" => string(&[(RSI, Win, 0x100), (RDI, Win, 0x200)], 100, 6),
        "repe cmpsb # each byte read twice, as source and as destination" => OVERLAP,
]);

cases!(STRINGS32, vmm_guest_mmio_str32_start, vmm_guest_mmio_str32_end, ".code32", [
        "rep movsb" => string(RAM_TO_WIN, 100, 100),
        "rep stosw" => string(WIN_DI, 100, 100),
        "repe cmpsb" => Meta { fill: Fill::Equal { at: 0x100, n: 37 }, ..CMPSB32 },
        "std; rep movsl; cld" => string(&[(RSI, Win, 0x800), (RDI, Ram, 0x800)], 60, 60),
]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload;
    use crate::tests::mmio::snippets;

    #[test]
    fn every_case_has_its_code() {
        for (p, table) in [
            (payload!(vmm_guest_mmio64_start, vmm_guest_mmio64_end), CASES64),
            (payload!(vmm_guest_mmio32_start, vmm_guest_mmio32_end), CASES32),
            (payload!(vmm_guest_mmio_str64_start, vmm_guest_mmio_str64_end), STRINGS64),
            (payload!(vmm_guest_mmio_str32_start, vmm_guest_mmio_str32_end), STRINGS32),
        ] {
            let codes = snippets(&p);
            assert_eq!(codes.len(), table.len(), "{}", p.name);
            assert!(codes.iter().all(|c| !c.is_empty()), "{}", p.name);
        }
        let c64 = snippets(&payload!(vmm_guest_mmio64_start, vmm_guest_mmio64_end));
        assert_eq!(c64[0], [0x88, 0x0b]); // movb %cl, (%rbx)
        let c32 = snippets(&payload!(vmm_guest_mmio32_start, vmm_guest_mmio32_end));
        assert_eq!(c32[2], [0x89, 0x4b, 0x04]); // movl %ecx, 4(%ebx)
        let s64 = snippets(&payload!(vmm_guest_mmio_str64_start, vmm_guest_mmio_str64_end));
        assert_eq!(s64[0], [0xf3, 0xa4]); // rep movsb
    }

    #[test]
    fn pointers_and_fixed_registers_do_not_collide() {
        for (name, m) in CASES64.iter().chain(CASES32).chain(STRINGS64).chain(STRINGS32) {
            for &(r, _, _) in m.ptrs {
                assert!(m.regs[r as usize].is_none(), "{name}: register {r} both");
            }
            if let Fill::Equal { at, n } | Fill::Run { at, n } = m.fill {
                assert!(at + n < 0x1000, "{name}");
            }
        }
    }
}
