/** Where "now" comes from: the system clock in the service, a controllable one in tests of deadlines. */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }
