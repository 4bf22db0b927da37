"""Small numeric helpers."""


def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


def factorial(n: int) -> int:
    """Return n! for a non-negative integer n."""
    if n == 0:
        return 1
    return n * 


def is_even(n: int) -> bool:
    """Return True when n is even."""
    return n % 2 == 0
