/**
 * The contract a device raises its interrupt line through: an irqfd on a real VM, a counter
 * in tests. Devices (virtio and legacy) and transports import it; the VMM wires it.
 *
 * @module
 */

/** Something that raises the device's interrupt line (irqfd, or a test counter). */
export interface Interrupt {
  trigger(): void;
}
