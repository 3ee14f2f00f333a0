// SPDX-License-Identifier: MIT OR Apache-2.0

//! vmm kselftests. Runs inside the test kernel (see testbed/), loads
//! `vmm.ko` itself, and prints TAP on standard output.
//!
//! Environment (from the kernel command line): `vmmtest_backend` (`vmx` or
//! `svm`) and `vmmtest_levels` (`4` or `5`) say what the machine is, so the
//! capability test can check the module's view against it.

mod guest;
mod kmod;
mod mem;
mod tap;
mod tests;

use std::process::ExitCode;

use tap::Test;

/// Opens `/dev/vmm` (loading the module first if a test unloaded it).
pub fn vmm() -> Result<libvmm::Vmm, String> {
    kmod::ensure_vmm().map_err(|e| format!("loading vmm.ko: {e}"))?;
    libvmm::Vmm::open().map_err(|e| format!("opening /dev/vmm: {e}"))
}

/// The descriptor flags (`F_GETFD`) of `fd`.
pub fn fd_flags(fd: i32) -> i32 {
    // SAFETY: F_GETFD only reads the descriptor table entry.
    unsafe { libc::fcntl(fd, libc::F_GETFD) }
}

/// xorshift64: reproducible pseudo-random numbers for the tests.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        &[$(Test { name: stringify!($name), run: tests::$module::$name }),*]
    };
}

const TESTS: &[Test] = tests![
    module::loads_and_logs_its_backend,
    ctl::version_and_abi,
    ctl::caps_match_the_cpu,
    ctl::unknown_commands_are_enotty,
    ctl::bad_pointers_are_efault,
    ctl::bad_names_are_einval,
    ctl::reserved_fields_and_flags_are_einval,
    ctl::random_ioctls_never_succeed_wrongly,
    vm::create_returns_a_vm_fd,
    vm::duplicate_name_is_eexist,
    vm::open_by_name,
    vm::list_sizes_and_e2big,
    vm::destroy_leaves_fds_enxio,
    vm::persistent_vm_outlives_its_fds,
    vm::destroy_on_close_waits_for_the_last_fd,
    vm::vm_fd_bad_input,
    vm::vm_fds_survive_dev_close,
    vm::dup_shares_the_vm,
    stress::vm_limit_is_enospc,
    stress::many_vms_return_memory,
    stress::racing_create_open_destroy,
    run::real_mode_guest_sums,
    run::protected_mode_guest_sums,
    run::long_mode_guest_sums_and_pages,
    run::port_io_all_widths,
    run::string_io_one_element_per_exit,
    run::guest_and_host_share_memory,
    run::triple_fault_suspends_the_vm,
    run::user_suspend_stops_every_run,
    run::kick_from_another_thread,
    run::kick_before_run_leaves_at_entry,
    run::concurrent_run_is_ebusy,
    run::signal_interrupts_run_with_eintr,
    run::destroy_while_running_is_enxio,
    run::vcpu_fd_keeps_a_closed_vm_alive,
    rip::run_noncanonical_next_rip,
    memory::rom_is_read_and_exec_only,
    memory::rom_can_hold_the_code,
    memory::unbacked_access_is_mmio_fetch_is_paging,
    memory::top_of_guest_physical_space,
    memory::alloc_seg_bad_input,
    memory::map_bad_input,
    memory::mapping_limit_is_enospc,
    memory::unmap_bad_input,
    memory::mmap_bad_input,
    memory::mmap_outlives_the_vm,
    mmio::mmio_matches_ram,
    mmio::mmio_strings,
    mmio_edges::mmio_edges,
    mmio_fuzz::mmio_random_code,
    vcpu::registers_round_trip,
    vcpu::cpuid_defaults,
    vcpu::cpuid_table_replaces_the_defaults,
    vcpu::msr_exits_and_completion,
    vcpu::kernel_handles_common_msrs,
    vcpu::create_vcpu_bad_input,
    vcpu::regs_bad_input,
    vcpu::descs_bad_input,
    vcpu::cpuid_bad_input,
    vcpu::run_bad_input,
    vcpu::vcpu_unknown_ioctls_are_enotty,
    vcpu::wrong_size_ioctls_are_enotty,
    xsave::xsetbv_follows_the_sdm,
    apic::apic_self_ipi_xapic_and_x2apic,
    apic::apic_timer_modes,
    apic_events::apic_event_ioctls,
    apic_events::apic_bad_input,
    apic_events::apic_all_halted_suspends,
    apic_random::apic_random_register_writes,
    apic_random::apic_random_multi,
    apic_smp::apic_smp_bringup,
    apic_smp::apic_icr_c4500_is_init,
    apic_smp::apic_ipi_fixed_between_vcpus,
    apic_storm::apic_interrupt_storm_is_kickable,
    apic_mp::apic_smp_64_vcpus,
    apic_mp::apic_ipi_modes_x2apic,
    apic_mixed::apic_x2apic_mixed,
    apic_state::apic_state_save_restore,
    platform::platform_pit_through_pic,
    platform::platform_pit_through_ioapic,
    platform_lines::platform_ioapic_lines,
    platform_pic::platform_pic_behaviour,
    platform_clock::platform_rtc_cmos,
    platform_clock::platform_pm_timer,
    platform_hpet::platform_hpet,
    platform_bad::platform_bad_input,
    platform_random::platform_random_io,
    platform_state::platform_device_state,
    vmx::vmx_controls_are_negotiated_and_logged,
    vmx::unrestricted_guest_runs_real_and_unpaged_modes,
    vmx::bad_guest_state_is_a_vmx_exit,
    vmx::icebp_reaches_the_guest_handler_once,
    vmx::cr4_rewrites_while_a_guest_runs,
    vmx::l1d_flush_on_runs_guests,
    fuzz::random_code_real_mode,
    fuzz::random_code_protected_mode,
    fuzz::random_code_long_mode,
    module::unload_refused_while_dev_open,
    module::unload_refused_while_a_vm_exists,
    module::unload_refused_while_a_vm_fd_is_open,
    module::unload_turns_everything_off,
    module::kvm_first_then_vmm_is_refused,
    module::vmm_first_then_kvm_coexist,
];

fn main() -> ExitCode {
    // `NAME` runs a test, `NAME*N` runs it N times (for a flaky one);
    // no argument runs them all.
    let only: Vec<(String, usize)> = std::env::args()
        .skip(1)
        .map(|a| match a.split_once('*') {
            Some((n, k)) => (n.to_string(), k.parse().unwrap_or(1)),
            None => (a, 1),
        })
        .collect();
    let owned: Vec<Test> = TESTS
        .iter()
        .flat_map(|t| {
            let times = if only.is_empty() {
                1
            } else {
                only.iter().filter(|(o, _)| o == t.name).map(|(_, k)| k).sum()
            };
            (0..times).map(|_| Test { name: t.name, run: t.run })
        })
        .collect();
    let failed = tap::run(&owned, &mut std::io::stdout());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
