"""The sandbox: the child process, its isolation, the throwaway database and the state cache."""
