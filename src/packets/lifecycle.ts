import type { PacketStatus } from '../db/schema.js'

export type PacketAction = 'receive' | 'acknowledge' | 'accept' | 'decline' | 'request_information' | 'supersede'

/** From which statuses each action may be taken, and the status it leads to. */
const transitions: Record<PacketAction, { from: readonly PacketStatus[]; to: PacketStatus }> = {
  receive: { from: ['sent'], to: 'received' },
  acknowledge: { from: ['sent', 'received'], to: 'acknowledged' },
  accept: { from: ['acknowledged', 'information_requested'], to: 'accepted' },
  decline: { from: ['acknowledged', 'information_requested'], to: 'declined' },
  request_information: { from: ['acknowledged'], to: 'information_requested' },
  supersede: { from: ['sent', 'received', 'acknowledged', 'information_requested'], to: 'superseded' },
}

/** The status after the action, or undefined when the action is not open from this status. */
export function nextPacketStatus(current: PacketStatus, action: PacketAction): PacketStatus | undefined {
  const transition = transitions[action]
  return transition.from.includes(current) ? transition.to : undefined
}
