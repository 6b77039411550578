import t from 'tap'
import { EndpointBreakers } from '../src/webhooks/breaker.js'

t.test('an endpoint pauses after three failures in a row, for the cool-down', async (t) => {
  const breakers = new EndpointBreakers({ failures: 3, cooldownMs: 60_000 })
  t.equal(breakers.failed('a', 0), null, 'one failure: deliveries go on')
  t.equal(breakers.failed('a', 1_000), null, 'two failures')
  t.same(breakers.failed('a', 2_000), new Date(62_000), 'the third pauses it for 60 s')
  t.same(breakers.open(30_000), ['a'], 'paused during the cool-down')
  t.equal(breakers.failed('a', 30_000), null, 'an attempt that was in flight ends without extending the pause')
  t.same(breakers.open(62_000), [], 'tried again once the cool-down is over')
  t.same(breakers.failed('a', 63_000), new Date(123_000), 'and one more failure pauses it again at once')
})

t.test('a success in between starts the count again; endpoints are counted apart', async (t) => {
  const breakers = new EndpointBreakers({ failures: 3, cooldownMs: 60_000 })
  breakers.failed('a', 0)
  breakers.failed('a', 1)
  breakers.succeeded('a')
  t.equal(breakers.failed('a', 2), null, 'two failures, a success, a failure: not paused')
  breakers.failed('b', 3)
  breakers.failed('b', 4)
  t.same(breakers.open(5), [], 'failures of one endpoint do not count against another')
  t.ok(breakers.failed('b', 5), 'b pauses at its own third failure')
  t.same(breakers.open(6), ['b'], 'and only b')

  const closed = new EndpointBreakers({ failures: 1, cooldownMs: 1_000 })
  closed.failed('c', 0)
  closed.succeeded('c')
  t.same(closed.open(500), [], 'a success closes a paused endpoint for good')
})
