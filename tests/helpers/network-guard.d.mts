/** Whether a textual address is in 127.0.0.0/8 or is ::1 (plain or IPv4-mapped). */
export function isLoopbackAddress(address: string): boolean;
/** The messages of every refused attempt so far in this process. */
export function networkViolations(): string[];
