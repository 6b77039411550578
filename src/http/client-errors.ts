import http from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionError } from 'fastify'
import { type Problem, problemType } from './problem.js'

const answers: Record<string, { status: number; code: string; title: string; detail: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'request-timeout',
    title: 'Request timeout',
    detail: 'The request was not received in full in time; send it again, without pauses.',
  },
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers-too-large',
    title: 'Request headers too large',
    detail: 'The request headers are larger than the service accepts.',
  },
}

const malformed = {
  status: 400,
  code: 'bad-request',
  title: 'Invalid request',
  detail: 'The request is not valid HTTP.',
}

/**
 * Answers what Node's HTTP server refuses before a request reaches the routes (a request not
 * received within REQUEST_TIMEOUT_MS, oversized headers, malformed HTTP) with a problem document
 * like every other error, then closes the connection: it is no longer in a state to read from.
 */
export function clientErrorHandler(error: ConnectionError, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const answer = answers[error.code] ?? malformed
  // A route may already have answered (say, a 401 before the body finished arriving): a second
  // response on the same connection would be garbage to the client.
  const answered = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent
  if (socket.writable && !answered) {
    const problem: Problem = {
      type: problemType(answer.code),
      title: answer.title,
      status: answer.status,
      detail: answer.detail,
    }
    const body = JSON.stringify(problem)
    socket.write(
      `HTTP/1.1 ${answer.status} ${http.STATUS_CODES[answer.status]}\r\n` +
        'Content-Type: application/problem+json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    )
  }
  socket.destroy()
}
