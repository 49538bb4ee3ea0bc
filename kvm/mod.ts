/**
 * `deno-kvm-ffi`: typed bindings to the Linux KVM API through Deno FFI. No VMM logic.
 *
 * ```ts ignore
 * import { Kvm } from "@denovm/deno-kvm-ffi";
 * using kvm = Kvm.open();
 * using vm = kvm.createVm();
 * ```
 *
 * @module
 */

export * from "./consts.ts";
export * from "./exit.ts";
export * from "./kvm.ts";
export * from "./structs.ts";
