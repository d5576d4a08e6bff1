import { Agent, setGlobalDispatcher } from 'undici'

/**
 * fetch in tests drops an idle pooled connection within a second, well before the server does
 * (5 s, src/http/server.ts). Following the server's own hint (`Keep-Alive: timeout=5`) it kept one
 * about as long as the server, and a request sent on it just as the server closed it failed before
 * any response ("other side closed"): a test that idled some 5 s between two requests to one
 * server failed now and then.
 */
setGlobalDispatcher(new Agent({ keepAliveTimeout: 1_000, keepAliveMaxTimeout: 1_000 }))
