/* main.c - the o7 command line (being built). */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "o7: not built yet\n");
    return 2;
}
