import type { CaseProfile } from '../db/schema.js'

/** A person under 18, by the profile's flags, age band or year of birth, is handled as a child. */
export function isChild(profile: CaseProfile, today: Date): boolean {
  if (
    profile.vulnerabilities.includes('child') ||
    profile.vulnerabilities.includes('unaccompanied_or_separated_child')
  ) {
    return true
  }
  if (profile.age_band === 'under_14' || profile.age_band === '14_17') return true
  // Born 18 years before this year, a person may still be 17: err on the side of child protection.
  return profile.year_of_birth !== undefined && today.getUTCFullYear() - profile.year_of_birth <= 18
}
