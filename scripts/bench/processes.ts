// The servers under load run as processes of their own, so that their memory is theirs alone and
// the load generator does not share their event loop.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface Server {
  name: string
  url: string
  pid: number
  /** Answers 200 once the server is up, and changes nothing. */
  readyPath: string
  /** The server's recent output, for when it dies or misbehaves. */
  output(): string
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * The options production gives Node (`config.node_options` in package.json, which
 * `npm run start:prod` and `worker:prod` pass), for a process that should run as production runs it.
 */
export function productionNodeOptions(root: string): string[] {
  const { config } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    config: { node_options: string }
  }
  return config.node_options.split(/\s+/).filter(Boolean)
}

/**
 * Starts `node <production options> <entry>` for compiled JavaScript, else
 * `node --import tsx <entry>`: tsx's own CLI
 * would run the program in a child process, and the memory measured would be the wrapper's.
 */
export async function startServer(
  name: string,
  entry: string,
  env: Record<string, string>,
  readyPath: string,
  cwd: string,
): Promise<Server> {
  const port = await freePort()
  const options = entry.endsWith('.js') ? [...productionNodeOptions(cwd), entry] : ['--import', 'tsx', entry]
  const child: ChildProcess = spawn(process.execPath, options, {
    cwd,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let exited = false
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true
      resolve()
    }),
  )
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (exited) throw new Error(`${name} exited before it was ready:\n${output}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} was not ready within 60 s:\n${output}`)
    }
    try {
      const response = await fetch(`${url}${readyPath}`)
      if (response.ok) break
    } catch {}
    await sleep(200)
  }
  return {
    name,
    url,
    pid: child.pid ?? 0,
    readyPath,
    output: () => output,
    async stop() {
      if (exited) return
      child.kill('SIGTERM')
      const timeout = sleep(15_000).then(() => 'timeout')
      if ((await Promise.race([exit.then(() => 'exited'), timeout])) === 'timeout') {
        child.kill('SIGKILL')
        await exit
      }
    },
  }
}

export interface Worker {
  name: string
  pid: number
  output(): string
  stop(): Promise<void>
}

/** Starts a process without HTTP, such as `npm run worker`, and waits until its output shows `ready`. */
export async function startWorker(
  name: string,
  entry: string,
  env: Record<string, string>,
  ready: RegExp,
  cwd: string,
): Promise<Worker> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let exited = false
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true
      resolve()
    }),
  )
  const deadline = Date.now() + 60_000
  while (!ready.test(output)) {
    if (exited) throw new Error(`${name} exited before it was ready:\n${output}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} was not ready within 60 s:\n${output}`)
    }
    await sleep(100)
  }
  return {
    name,
    pid: child.pid ?? 0,
    output: () => output,
    async stop() {
      if (exited) return
      child.kill('SIGTERM')
      const timeout = sleep(15_000).then(() => 'timeout')
      if ((await Promise.race([exit.then(() => 'exited'), timeout])) === 'timeout') {
        child.kill('SIGKILL')
        await exit
      }
    },
  }
}

function memoryOf(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
    return match ? Number(match[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** Samples the resident memory of a process every 200 ms until stopped; answers the highest sample, in bytes. */
export function sampleMemory(pid: number): { stop(): number } {
  let peak = memoryOf(pid, 'VmRSS') ?? 0
  const timer = setInterval(() => {
    peak = Math.max(peak, memoryOf(pid, 'VmRSS') ?? 0)
  }, 200)
  return {
    stop() {
      clearInterval(timer)
      return Math.max(peak, memoryOf(pid, 'VmRSS') ?? 0)
    },
  }
}

export function highWaterMark(pid: number): number | undefined {
  return memoryOf(pid, 'VmHWM')
}
