/**
 * Imported first by the server's entry point, before anything loads graphql: graphql-js picks its
 * checks at load time, and outside production it verifies every instanceof against duplicate
 * copies of itself, a cost paid on every field of every response. An explicit NODE_ENV wins.
 */
process.env.NODE_ENV ??= 'production'
