import type { Membership as MembershipShape } from '../../tenant/projects/memberships.js'
import { builder } from '../builder.js'

/** Contember's membership shapes, shared by project members, project API keys and invitations. */

const VariableEntry = builder.simpleObject('VariableEntry', {
  fields: (t) => ({ name: t.string(), values: t.stringList() }),
})

export const Membership = builder.objectRef<MembershipShape>('Membership').implement({
  fields: (t) => ({
    role: t.exposeString('role'),
    variables: t.field({ type: [VariableEntry], resolve: (membership) => membership.variables.map((variable) => ({ ...variable, values: [...variable.values] })) }),
  }),
})

const VariableEntryInput = builder.inputType('VariableEntryInput', {
  fields: (t) => ({ name: t.string({ required: true }), values: t.stringList({ required: true }) }),
})

export const MembershipInput = builder.inputType('MembershipInput', {
  fields: (t) => ({
    role: t.string({ required: true }),
    variables: t.field({ type: [VariableEntryInput], required: true }),
  }),
})

