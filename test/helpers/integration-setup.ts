// Integration suites start real servers; hooks and tests get time for that.
jest.setTimeout(180_000);
