export { type DormancyRules, lastActivity, sweepDecision } from "./dormancy.js";
export {
  type Decision,
  decideIssuance,
  type Grant,
  type IssuanceFacts,
  MIN_LIFETIME_MS,
} from "./issuance.js";
export { checkLiveness, type Denial, type LivenessFacts } from "./liveness.js";
export {
  checkPosture,
  deviceAssignedTo,
  type PostureDenial,
  type PostureRules,
} from "./posture.js";
