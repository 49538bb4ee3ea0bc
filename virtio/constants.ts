/** Virtio 1.x constants shared by the core, the transports and the devices. @module */

/** Device status bits. */
export const STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  /** The device MMU failed a translation (admin-virtqueue virtual devices); set together with
   * DEVICE_NEEDS_RESET. */
  DEVICE_MMU_FAIL: 0x20,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Transport-independent feature bits. */
export const F = {
  NOTIFY_ON_EMPTY: 24n,
  ANY_LAYOUT: 27n,
  INDIRECT_DESC: 28n,
  EVENT_IDX: 29n,
  VERSION_1: 32n,
  ACCESS_PLATFORM: 33n,
  RING_PACKED: 34n,
  IN_ORDER: 35n,
} as const;

/** The bit mask of feature `bit`. */
export function bit(b: bigint): bigint {
  return 1n << b;
}

/** Device type ids. */
export const DEVICE_ID = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  RNG: 4,
  VSOCK: 19,
} as const;

/** Descriptor flags. */
export const DESC_F = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
/** `avail.flags`: the driver asks for no used-buffer notifications. */
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
/** `used.flags`: the device asks for no available-buffer notifications. */
export const VRING_USED_F_NO_NOTIFY = 1;

/** Interrupt status bits (MMIO InterruptStatus, PCI ISR). */
export const ISR = { USED_BUFFER: 1, CONFIG_CHANGE: 2 } as const;
