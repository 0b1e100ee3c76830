"""placeholder"""
class FunctionsMixin:
    def _init_functions(self):
        pass
