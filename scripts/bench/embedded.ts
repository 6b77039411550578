export async function runEmbedded(_: {
  root: string
  cases: number
  seconds: number
  connections: number
  log: (line: string) => void
}): Promise<string> {
  return 'not yet'
}
