export { ERROR_CODES, type ErrorCode, isErrorCode } from "./codes.js";
export { isMayflyError, MayflyError } from "./mayfly-error.js";
