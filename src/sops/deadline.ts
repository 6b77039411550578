import { DateTime, Duration, IANAZone } from 'luxon'

const DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/

/** Zones found valid: asking Intl costs more than the deadline it checks. Only valid names are kept. */
const validZones = new Set<string>()

/** Whether `zone` names a time zone of the IANA database (`Europe/Kyiv`; not an offset such as `+02:00`). */
export function isTimeZone(zone: string): boolean {
  if (validZones.has(zone)) return true
  const valid = IANAZone.isValidZone(zone)
  if (valid) validZones.add(zone)
  return valid
}

/**
 * The moment an ISO 8601 duration after `from`, counted as people count on the calendar of
 * `zone`: years, months, weeks and days move the local date and keep the local time of day (31
 * January + P1M is the last day of February; P1D across a change to summer time is 23 hours),
 * hours, minutes and seconds are elapsed time. Every deadline of the service is computed here.
 */
export function addDuration(from: Date, duration: string, zone = 'UTC'): Date {
  if (!DURATION.test(duration)) throw new Error(`not an ISO 8601 duration: ${duration}`)
  if (!isTimeZone(zone)) throw new Error(`not an IANA time zone: ${zone}`)
  return DateTime.fromJSDate(from).setZone(zone).plus(Duration.fromISO(duration)).toJSDate()
}
