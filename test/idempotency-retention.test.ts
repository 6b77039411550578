import { sql } from 'kysely'
import t from 'tap'
import { demoKeys, startTestApp } from './fixtures/app.js'

const newCase = (given_name: string) => ({
  profile: { country_of_return: 'UA', vulnerabilities: ['victim_of_trafficking'] },
  sections: { identity: { given_name } },
})

t.test('an Idempotency-Key past its 24 hours is free again', async (t) => {
  const { request, database } = await startTestApp(t)
  const post = (payload: object) =>
    request({
      method: 'POST',
      url: '/v1/cases',
      key: demoKeys.demoiomplcw1,
      headers: { 'idempotency-key': 'case-2026-11-25-a' },
      payload,
    })
  const first = await post(newCase('Olena'))
  t.equal(first.statusCode, 201)
  t.equal((await post(newCase('Iryna'))).statusCode, 422, 'within 24 hours another body is refused')

  await sql`update idempotency_keys set created_at = now() - interval '25 hours'`.execute(database.db)
  const later = await post(newCase('Iryna'))
  t.equal(later.statusCode, 201)
  t.equal(later.headers['idempotent-replayed'], undefined, 'a new effect, not a replay')
  t.not(later.json().id, first.json().id)
  const replay = await post(newCase('Iryna'))
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.equal(replay.json().id, later.json().id)
})
