"""consentry.domain"""
