from .gtm import GTMNeck

__all__ = ['GTMNeck']
