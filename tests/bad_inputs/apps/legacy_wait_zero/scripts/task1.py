def task(filename, pathin, pathout):
    return [filename]
