/**
 * The one shape of every component whose state goes into a snapshot (issue 13's "Persist"):
 *
 * - `save(): S` returns the state as plain data (what `snapshot/format.ts` encodes: JSON,
 *   with byte arrays and 64-bit values tagged).
 * - `static check(x: unknown, ...context): S` validates untrusted data and returns it
 *   typed. It is pure: it opens nothing, changes nothing, and throws a `RangeError` that
 *   names the field. The context is what the data is checked against (a queue's max size,
 *   the guest's RAM layout, a device's offered features).
 * - `restore(s: S, ...context): void` applies a state to a component already wired to its
 *   host side. It runs `check` first and changes nothing when that throws (all or nothing).
 *
 * Why a static `check` and an instance `restore`, not a static `restore` that constructs:
 * a device's host side (a disk file, a TAP, a socket) comes from the VM's configuration and
 * is opened by the wiring, not by the saved state. Splitting the pure check from the apply
 * lets a restore validate the whole snapshot before it opens any of them
 * (`vmm/snapshot_state.ts`). Each component's round trip (save, encode, decode, check,
 * restore into a fresh one, save again: equal) is tested in `tests/persist_test.ts`.
 *
 * Components with this shape: `Queue`, `VirtioDevice`, `MmioTransport`, the virtio
 * backends with state of their own (`ConsoleDevice`, `NetDevice`, `VsockDevice`, and the
 * `ManagementDevice` with its `AdminTransport`, whose check also builds each virtual device
 * from its type; blk and rng keep none beyond the core), `Uart`, `I8042`, `Rtc`. A vCPU's state has the same three parts
 * as functions over a `Vcpu` (`saveVcpu`, `validateVcpuState`, `restoreVcpu` in
 * `snapshot/vcpu_state.ts`), and the whole snapshot as `SnapshotState`/`validateSnapshot`.
 *
 * @module
 */

/** A component whose state is saved and restored (see the module doc for `check`). */
export interface Persist<S> {
  /** The state as plain data. */
  save(): S;
  /** Applies a saved state (checked first: nothing changes when it is refused). */
  restore(state: S): void;
}
