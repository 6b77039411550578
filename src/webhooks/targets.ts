import { lookup } from 'node:dns'
import type { LookupFunction } from 'node:net'
import ipaddr from 'ipaddr.js'

/** Why a URL may not receive webhooks, or null when it may. */
export function unsafeTargetReason(url: URL, allowPrivate: boolean): string | null {
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    return 'a webhook URL must use https'
  }
  if (url.username || url.password) return 'a webhook URL must not carry credentials'
  if (allowPrivate) return null
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (ipaddr.isValid(host)) return isPublicAddress(host) ? null : `${host} is not a public address`
  if (host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) return `${host} is not a public host`
  return null
}

/** Only global unicast addresses: never loopback, link-local, private, shared, multicast or reserved ranges. */
export function isPublicAddress(address: string): boolean {
  return ipaddr.process(address).range() === 'unicast'
}

/**
 * Resolves a host name as `dns.lookup` does, but fails when any address it resolves to is not
 * public: the address is checked at the moment of connecting, so a name that was public when the
 * endpoint was registered cannot be turned against the service's own network later.
 */
export const publicLookup: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '', 4)
    const refused = addresses.find((entry) => !isPublicAddress(entry.address))
    if (refused) {
      return callback(new Error(`${hostname} resolves to ${refused.address}, which is not a public address`), '', 4)
    }
    const first = addresses[0]
    if (!first) return callback(new Error(`${hostname} has no address`), '', 4)
    if (options.all) return (callback as unknown as (e: null, a: typeof addresses) => void)(null, addresses)
    return callback(null, first.address, first.family)
  })
}
