/** The baseline's activity: a pure no-op that reports when it started. */
export interface BaselineActivities {
  noop(): Promise<number>;
}

export const baselineActivities: BaselineActivities = {
  async noop() {
    return Date.now();
  },
};
