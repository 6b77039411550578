/**
 * A circuit breaker per endpoint. After `failures` failed attempts in a row the endpoint is open:
 * its deliveries wait, untouched, for `cooldownMs`. Then it is half-open: deliveries go again, the
 * first failure opens it once more and a success closes it.
 *
 * Each process keeps its own breakers. They protect that process's delivery slots, which no other
 * process shares, so there is nothing to agree on across processes; a process that starts anew
 * learns again within `failures` attempts.
 */
export class EndpointBreakers {
  readonly #failures: number
  readonly #cooldownMs: number
  readonly #endpoints = new Map<string, { failures: number; openUntil: number }>()

  constructor({ failures, cooldownMs }: { failures: number; cooldownMs: number }) {
    this.#failures = failures
    this.#cooldownMs = cooldownMs
  }

  /** The endpoints whose deliveries wait at `now`. */
  open(now: number): string[] {
    const open: string[] = []
    for (const [endpoint, state] of this.#endpoints) if (state.openUntil > now) open.push(endpoint)
    return open
  }

  isOpen(endpoint: string, now: number): boolean {
    return (this.#endpoints.get(endpoint)?.openUntil ?? 0) > now
  }

  succeeded(endpoint: string): void {
    this.#endpoints.delete(endpoint)
  }

  /** Counts a failed attempt; answers until when the endpoint is open if this failure opened it. */
  failed(endpoint: string, now: number): Date | null {
    const state = this.#endpoints.get(endpoint) ?? { failures: 0, openUntil: 0 }
    // Attempts that were already in flight when the breaker opened end while it is open: they
    // neither extend the pause nor count towards the next one.
    if (state.openUntil > now) return null
    const halfOpen = state.openUntil > 0
    state.failures += 1
    this.#endpoints.set(endpoint, state)
    if (!halfOpen && state.failures < this.#failures) return null
    state.openUntil = now + this.#cooldownMs
    return new Date(state.openUntil)
  }
}
