const DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/

/** The moment an ISO 8601 duration after `from` (calendar years and months, UTC). */
export function addDuration(from: Date, duration: string): Date {
  const match = DURATION.exec(duration)
  if (!match || duration === 'P' || duration.endsWith('T')) throw new Error(`not an ISO 8601 duration: ${duration}`)
  const [years, months, weeks, days, hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const due = new Date(from)
  due.setUTCFullYear(due.getUTCFullYear() + years, due.getUTCMonth() + months, due.getUTCDate() + weeks * 7 + days)
  due.setUTCHours(due.getUTCHours() + hours, due.getUTCMinutes() + minutes, due.getUTCSeconds() + seconds)
  return due
}
