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
  childProtectionPoland: '00000000-0000-4000-8000-000000000104',
  referralMechanismPoland: '00000000-0000-4000-8000-000000000105',
  policePoland: '00000000-0000-4000-8000-000000000106',
  rapporteurPoland: '00000000-0000-4000-8000-000000000107',
  childProtectionUkraine: '00000000-0000-4000-8000-000000000203',
  referralMechanismUkraine: '00000000-0000-4000-8000-000000000204',
  embassyUkraine: '00000000-0000-4000-8000-000000000205',
  childProtectionAlbania: '00000000-0000-4000-8000-000000000302',
  referralMechanismAlbania: '00000000-0000-4000-8000-000000000303',
  childProtectionMorocco: '00000000-0000-4000-8000-000000000402',
  referralMechanismMorocco: '00000000-0000-4000-8000-000000000403',
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
  // The authorities a procedure names: told of a case, never parties to it unless invited.
  authority(
    demoOrganisationIds.childProtectionPoland,
    'Child protection authority, Warsaw (demo)',
    'PL',
    'child_protection_authority',
    '110',
    'democpplcw01',
  ),
  authority(
    demoOrganisationIds.referralMechanismPoland,
    'National referral mechanism coordinator, Poland (demo)',
    'PL',
    'national_referral_mechanism',
    '111',
    'demonrmplcw1',
  ),
  authority(
    demoOrganisationIds.policePoland,
    'Police anti-trafficking unit, Poland (demo)',
    'PL',
    'law_enforcement',
    '112',
    'demopolplcw1',
  ),
  authority(
    demoOrganisationIds.rapporteurPoland,
    'National rapporteur on trafficking, Poland (demo)',
    'PL',
    'national_rapporteur',
    '113',
    'demorappl001',
  ),
  authority(
    demoOrganisationIds.childProtectionUkraine,
    "Children's service, Kyiv (demo)",
    'UA',
    'child_protection_authority',
    '210',
    'democpuacw01',
  ),
  authority(
    demoOrganisationIds.referralMechanismUkraine,
    'National referral mechanism coordinator, Ukraine (demo)',
    'UA',
    'national_referral_mechanism',
    '211',
    'demonrmuacw1',
  ),
  // An embassy or consulate is registered under the country it represents.
  authority(
    demoOrganisationIds.embassyUkraine,
    'Consular section, Embassy of Ukraine in Warsaw (demo)',
    'UA',
    'embassy',
    '212',
    'demoembuacw1',
  ),
  authority(
    demoOrganisationIds.childProtectionAlbania,
    'Child protection unit, Tirana (demo)',
    'AL',
    'child_protection_authority',
    '310',
    'democpalcw01',
  ),
  authority(
    demoOrganisationIds.referralMechanismAlbania,
    'National referral mechanism coordinator, Albania (demo)',
    'AL',
    'national_referral_mechanism',
    '311',
    'demonrmalcw1',
  ),
  authority(
    demoOrganisationIds.childProtectionMorocco,
    'Child protection service, Rabat (demo)',
    'MA',
    'child_protection_authority',
    '410',
    'democpmacw01',
  ),
  authority(
    demoOrganisationIds.referralMechanismMorocco,
    'National referral mechanism coordinator, Morocco (demo)',
    'MA',
    'national_referral_mechanism',
    '411',
    'demonrmmacw1',
  ),
]

/** An authority of the demo directory, with one caseworker who reads its feed. */
function authority(
  id: string,
  name: string,
  country: string,
  kind: OrganisationKind,
  principalNumber: string,
  prefix: string,
): DemoOrganisation {
  const principalId = `00000000-0000-4000-8001-000000000${principalNumber}`
  return {
    id,
    name,
    country,
    kind,
    can_send: false,
    can_receive: false,
    principals: [
      principal(principalId, `Duty officer, ${name.replace(' (demo)', '')}`, 'staff', ['caseworker'], prefix),
    ],
  }
}
export interface DemoTransferAgreement {
  id: string
  exporter_organisation_id: string
  importer_organisation_id: string
  safeguard: 'administrative_arrangement' | 'standard_contractual_clauses'
  reference: string
  valid_from: string
  valid_until: string
}

/**
 * Standing transfer agreements (GDPR Art. 46) for every demo corridor out of Poland, registered by
 * the hub administrator: a referral to Ukraine, Albania or Morocco (no adequacy decision) rests on
 * them. Regular referrals are no "occasional" transfer, so safeguards, not derogations, are their
 * basis: public bodies and IOM sign administrative arrangements, the NGO standard contractual clauses.
 */
export const demoTransferAgreements: DemoTransferAgreement[] = (() => {
  const ids = demoOrganisationIds
  const exporters = [ids.iomPoland, ids.borderGuardPoland, ids.ngoWarsaw]
  const importers = [ids.iomUkraine, ids.kyivShelter, ids.iomAlbania, ids.iomMorocco]
  return exporters.flatMap((exporter, e) =>
    importers.map((importer, i) => {
      const sender = demoOrganisations.find((organisation) => organisation.id === exporter)
      const receiver = demoOrganisations.find((organisation) => organisation.id === importer)
      const safeguard = sender?.kind === 'ngo' ? 'standard_contractual_clauses' : 'administrative_arrangement'
      return {
        id: `00000000-0000-4000-8002-00000000${String(e + 1).padStart(2, '0')}${String(i + 1).padStart(2, '0')}`,
        exporter_organisation_id: exporter,
        importer_organisation_id: importer,
        safeguard,
        reference: `${sender?.name} – ${receiver?.name}: ${safeguard.replaceAll('_', ' ')} 2026/${e + 1}${i + 1}`,
        valid_from: '2026-01-01',
        valid_until: '2030-12-31',
      }
    }),
  )
})()
