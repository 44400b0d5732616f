"""consentry.services"""
