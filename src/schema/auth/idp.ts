import { initSignInIDP, signInIDP } from '../../tenant/identityProviders/signInIDP.js'
import { builder } from '../builder.js'
import { defineResponse } from '../responses.js'
import { Person } from '../identity/identity.js'
import { SignInOptions } from './signIn.js'

const InitSignInIDPResponse = defineResponse('InitSignInIDP', ['PROVIDER_NOT_FOUND', 'IDP_VALIDATION_FAILED'] as const, {
  result: builder.simpleObject('InitSignInIDPResult', {
    fields: (t) => ({
      authUrl: t.string(),
      sessionData: t.field({ type: 'Json', description: 'Keep it and pass it back to signInIDP as data.sessionData.' }),
      idpConfiguration: t.field({ type: 'Json', nullable: true, description: "The provider's configuration without its secret, when the provider is set to return it." }),
    }),
  }),
})

const SignInIDPResult = builder.simpleObject('SignInIDPResult', {
  fields: (t) => ({
    token: t.string(),
    person: t.field({ type: Person }),
    idpResponse: t.field({ type: 'Json', nullable: true, description: 'Not returned by this server (always null).' }),
  }),
})

const SignInIDPResponse = defineResponse(
  'SignInIDP',
  ['INVALID_IDP_RESPONSE', 'IDP_VALIDATION_FAILED', 'PERSON_NOT_FOUND', 'PERSON_DISABLED', 'PERSON_ALREADY_EXISTS', 'PROVIDER_NOT_FOUND'] as const,
  { result: SignInIDPResult },
)

builder.mutationFields((t) => ({
  initSignInIDP: t.field({
    type: InitSignInIDPResponse,
    nullable: true,
    description: 'Starts an OpenID Connect sign-in. data: { redirectUrl }.',
    authScopes: { privilege: 'person:signInIDP' },
    args: { identityProvider: t.arg.string({ required: true }), data: t.arg({ type: 'Json', required: false }) },
    resolve: (_root, args, context) => initSignInIDP(context, args.identityProvider, args.data),
  }),
  signInIDP: t.field({
    type: SignInIDPResponse,
    nullable: true,
    description: "Completes an OpenID Connect sign-in. data: { url (the provider's redirect), sessionData, redirectUrl? }.",
    authScopes: { privilege: 'person:signInIDP' },
    args: {
      identityProvider: t.arg.string({ required: true }),
      data: t.arg({ type: 'Json', required: false }),
      expiration: t.arg.int({ required: false, description: 'Idle lifetime of the session, in minutes.' }),
      options: t.arg({ type: SignInOptions, required: false }),
    },
    resolve: (_root, args, context) =>
      signInIDP(context, {
        identityProvider: args.identityProvider,
        data: args.data,
        expiration: args.expiration,
        trustForwardedClientInfo: args.options?.trustForwardedClientInfo,
      }),
  }),
}))
