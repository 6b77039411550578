import type { OrganisationKind, Role } from '../db/schema.js'

/**
 * The demo data set: a small, clearly marked cast of partners on both sides of a return, with
 * API keys that are public by design. It is seeded only into a database that asks for it.
 */
export interface DemoPrincipal {
  id: string
  name: string
  kind: 'staff' | 'system'
  roles: Role[]
  /** The whole key: demo keys are published, so they are fixed. */
  key: { prefix: string; secret: string }
}

export interface DemoOrganisation {
  id: string
  name: string
  country: string
  kind: OrganisationKind
  can_send: boolean
  can_receive: boolean
  /** The calendar of its deadlines; without it, its country's. */
  time_zone?: string
  principals: DemoPrincipal[]
}

/** The demo organisations' fixed ids, by name. */
export const demoOrganisationIds = {
  hub: '00000000-0000-4000-8000-000000000001',
  iomPoland: '00000000-0000-4000-8000-000000000101',
  borderGuardPoland: '00000000-0000-4000-8000-000000000102',
  ngoWarsaw: '00000000-0000-4000-8000-000000000103',
  iomUkraine: '00000000-0000-4000-8000-000000000201',
  kyivShelter: '00000000-0000-4000-8000-000000000202',
  iomAlbania: '00000000-0000-4000-8000-000000000301',
  iomMorocco: '00000000-0000-4000-8000-000000000401',
  auditOffice: '00000000-0000-4000-8000-000000000501',
} as const

function principal(id: string, name: string, kind: 'staff' | 'system', roles: Role[], prefix: string): DemoPrincipal {
  return { id, name, kind, roles, key: { prefix, secret: `demo-only-${prefix}-not-secret` } }
}

export const demoOrganisations: DemoOrganisation[] = [
  {
    id: demoOrganisationIds.hub,
    name: 'TRM hub operator (demo)',
    country: 'BE',
    kind: 'hub_operator',
    can_send: false,
    can_receive: false,
    time_zone: 'Europe/Brussels',
    principals: [
      principal('00000000-0000-4000-8001-000000000001', 'Hub administrator', 'staff', ['admin'], 'demohubadmin'),
    ],
  },
  {
    id: demoOrganisationIds.iomPoland,
    name: 'IOM Poland (demo)',
    country: 'PL',
    kind: 'iom_mission',
    can_send: true,
    can_receive: false,
    time_zone: 'Europe/Warsaw',
    principals: [
      principal(
        '00000000-0000-4000-8001-000000000101',
        'Case management system of IOM Poland',
        'system',
        ['caseworker'],
        'demoiomplcw1',
      ),
      principal(
        '00000000-0000-4000-8001-000000000102',
        'Supervisor, IOM Poland',
        'staff',
        ['supervisor'],
        'demoiomplsv1',
      ),
      principal(
        '00000000-0000-4000-8001-000000000108',
        'Second supervisor, IOM Poland',
        'staff',
        ['supervisor'],
        'demoiomplsv2',
      ),
      principal(
        '00000000-0000-4000-8001-000000000103',
        'Data protection officer, IOM Poland',
        'staff',
        ['dpo'],
        'demoiompldpo',
      ),
    ],
  },
  {
    id: demoOrganisationIds.borderGuardPoland,
    name: 'Border Guard Headquarters, Poland (demo)',
    country: 'PL',
    kind: 'government_authority',
    can_send: true,
    can_receive: false,
    time_zone: 'Europe/Warsaw',
    principals: [
      principal(
        '00000000-0000-4000-8001-000000000104',
        'Anti-trafficking unit, Border Guard',
        'staff',
        ['caseworker'],
        'demobgplcw01',
      ),
    ],
  },
  {
    id: demoOrganisationIds.ngoWarsaw,
    name: 'Anti-trafficking NGO, Warsaw (demo)',
    country: 'PL',
    kind: 'ngo',
    can_send: true,
    can_receive: false,
    time_zone: 'Europe/Warsaw',
    principals: [
      principal(
        '00000000-0000-4000-8001-000000000105',
        'Counsellor, NGO Warsaw',
        'staff',
        ['caseworker'],
        'demongoplcw1',
      ),
    ],
  },
  {
    id: demoOrganisationIds.iomUkraine,
    name: 'IOM Ukraine (demo)',
    country: 'UA',
    kind: 'iom_mission',
    can_send: false,
    can_receive: true,
    time_zone: 'Europe/Kyiv',
    principals: [
      principal(
        '00000000-0000-4000-8001-000000000201',
        'Case management system of IOM Ukraine',
        'system',
        ['caseworker'],
        'demoiomuacw1',
      ),
      principal(
        '00000000-0000-4000-8001-000000000202',
        'Supervisor, IOM Ukraine',
        'staff',
        ['supervisor'],
        'demoiomuasv1',
      ),
      principal(
        '00000000-0000-4000-8001-000000000209',
        'Data protection officer, IOM Ukraine',
        'staff',
        ['dpo'],
        'demoiomuadpo',
      ),
    ],
  },
  {
    id: demoOrganisationIds.kyivShelter,
    name: 'Shelter for survivors, Kyiv (demo)',
    country: 'UA',
    kind: 'shelter',
    can_send: false,
    can_receive: true,
    time_zone: 'Europe/Kyiv',
    principals: [
      principal(
        '00000000-0000-4000-8001-000000000203',
        'Social worker, Kyiv shelter',
        'staff',
        ['caseworker'],
        'demoshuacw01',
      ),
    ],
  },
  {
    id: demoOrganisationIds.iomAlbania,
    name: 'IOM Albania (demo)',
    country: 'AL',
    kind: 'iom_mission',
    can_send: false,
    can_receive: true,
    time_zone: 'Europe/Tirane',
    principals: [
      principal(
        '00000000-0000-4000-8001-000000000301',
        'Caseworker, IOM Albania',
        'staff',
        ['caseworker'],
        'demoiomalcw1',
      ),
    ],
  },
  {
    id: demoOrganisationIds.iomMorocco,
    name: 'IOM Morocco (demo)',
    country: 'MA',
    kind: 'iom_mission',
    can_send: false,
    can_receive: true,
    time_zone: 'Africa/Casablanca',
    principals: [
      principal(
        '00000000-0000-4000-8001-000000000401',
        'Caseworker, IOM Morocco',
        'staff',
        ['caseworker'],
        'demoiommacw1',
      ),
    ],
  },
  {
    id: demoOrganisationIds.auditOffice,
    name: 'Audit office of the hub (demo)',
    country: 'BE',
    kind: 'hub_operator',
    can_send: false,
    can_receive: false,
    time_zone: 'Europe/Brussels',
    principals: [principal('00000000-0000-4000-8001-000000000501', 'Auditor', 'staff', ['auditor'], 'demoauditor1')],
  },
]
